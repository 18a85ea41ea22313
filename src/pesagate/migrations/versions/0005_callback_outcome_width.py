"""callback outcomes up to 24 characters (AWAITING_CONFIRMATION)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:47:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mpesa_callbacks", schema=None) as batch_op:
        batch_op.alter_column(
            "outcome", existing_type=sa.String(length=16), type_=sa.String(length=24)
        )


def downgrade() -> None:
    with op.batch_alter_table("mpesa_callbacks", schema=None) as batch_op:
        batch_op.alter_column(
            "outcome", existing_type=sa.String(length=24), type_=sa.String(length=16)
        )
