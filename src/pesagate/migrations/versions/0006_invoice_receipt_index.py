"""an index on invoices.mpesa_reference (statement settlement checks receipts are unused)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_invoices_mpesa_reference", "invoices", ["mpesa_reference"])


def downgrade() -> None:
    op.drop_index("ix_invoices_mpesa_reference", table_name="invoices")
