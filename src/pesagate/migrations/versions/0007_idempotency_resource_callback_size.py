"""idempotency keys remember what their request created; callbacks keep their size

- `idempotency_keys.resource_pk`: the row (an invoice, for a push) committed in the request's
  own transaction, so a retry after a crash answers from it instead of running again.
- `mpesa_callbacks.body_size`: a refused callback keeps only a digest, its size and a prefix.
- `ix_mpesa_callbacks_received`: pruning old callbacks that belong to no invoice.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resource_pk", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("mpesa_callbacks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_size", sa.Integer(), nullable=True))
    op.create_index("ix_mpesa_callbacks_received", "mpesa_callbacks", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_mpesa_callbacks_received", table_name="mpesa_callbacks")
    with op.batch_alter_table("mpesa_callbacks", schema=None) as batch_op:
        batch_op.drop_column("body_size")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("resource_pk")
