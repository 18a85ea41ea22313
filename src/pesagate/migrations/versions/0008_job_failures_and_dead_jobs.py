"""jobs: consecutive failures, dead jobs, lanes; webhook attempts keep an answer excerpt

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("dead_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lane", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index("ix_jobs_due")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("failures", server_default=None)
        batch_op.create_index("ix_jobs_due", ["run_at"], postgresql_where=LIVE, sqlite_where=LIVE)
        batch_op.create_index("ix_jobs_dead", ["dead_at"])
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_excerpt", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    # Dead jobs become ordinary jobs again: the old code retries them with backoff.
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_column("response_excerpt")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_dead")
        batch_op.drop_index("ix_jobs_due")
        batch_op.drop_column("dead_at")
        batch_op.drop_column("lane")
        batch_op.drop_column("failures")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_due", ["run_at"], unique=False)
