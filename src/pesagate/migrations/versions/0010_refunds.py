"""refunds: chargebacks carried out by M-Pesa reversals, their raw Results, ledger holds

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", ID, nullable=False),
        sa.Column("chargeback_id", sa.String(length=16), nullable=False),
        sa.Column("business_id", ID, nullable=False),
        sa.Column("invoice_id", ID, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("wallet_debit_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("reason_details", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("resolution", sa.String(length=300), nullable=False),
        sa.Column("staff_created", sa.Boolean(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("reversal_sent_at", WHEN, nullable=True),
        sa.Column("originator_conversation_id", sa.String(length=64), nullable=True),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("reversal_receipt", sa.String(length=32), nullable=True),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("status_queries", sa.Integer(), nullable=False),
        sa.Column("completed_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_refunds_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_refunds_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("chargeback_id", name=op.f("uq_refunds_chargeback_id")),
        sa.UniqueConstraint("token", name=op.f("uq_refunds_token")),
    )
    op.create_index("ix_refunds_business_created", "refunds", ["business_id", "created_at"])
    op.create_index("ix_refunds_invoice", "refunds", ["invoice_id"])

    op.create_table(
        "reversal_results",
        sa.Column("id", ID, nullable=False),
        sa.Column("refund_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("raw_body", sa.Text(), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("received_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_reversal_results_refund_id_refunds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reversal_results")),
    )
    op.create_index("ix_reversal_results_refund", "reversal_results", ["refund_id", "body_sha256"])

    op.create_table(
        "ledger_holds",
        sa.Column("id", ID, nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("entry_id", ID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_holds_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_holds_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_holds")),
        sa.UniqueConstraint("key", name=op.f("uq_ledger_holds_key")),
    )
    op.create_index("ix_ledger_holds_account", "ledger_holds", ["account_id", "status"])

    # Existing rows start at zero: nothing was refunded or held before refunds existed. The
    # server default stays (dropping it would make SQLite rebuild two referenced tables).
    op.add_column(
        "invoices", sa.Column("refunded_minor", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "ledger_accounts",
        sa.Column("held_minor", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    for table, column in (("ledger_accounts", "held_minor"), ("invoices", "refunded_minor")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
    op.drop_index("ix_ledger_holds_account", table_name="ledger_holds")
    op.drop_table("ledger_holds")
    op.drop_index("ix_reversal_results_refund", table_name="reversal_results")
    op.drop_table("reversal_results")
    op.drop_index("ix_refunds_invoice", table_name="refunds")
    op.drop_index("ix_refunds_business_created", table_name="refunds")
    op.drop_table("refunds")
