"""ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 09:13:43.544718
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The database itself refuses an unbalanced entry (checked at commit, when all of an entry's
# postings exist) and any change to a posting other than CLEARING -> AVAILABLE.
POSTGRES_GUARDS = [
    """
    CREATE FUNCTION ledger_entry_balanced() RETURNS trigger AS $$
    BEGIN
        IF (SELECT COALESCE(SUM(amount_minor), 0) FROM ledger_postings
            WHERE entry_id = NEW.entry_id) <> 0 THEN
            RAISE EXCEPTION 'ledger entry % does not balance', NEW.entry_id;
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced()
    """,
    """
    CREATE FUNCTION ledger_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME;
        END IF;
        IF TG_TABLE_NAME = 'ledger_entries'
           OR NEW.entry_id <> OLD.entry_id OR NEW.account_id <> OLD.account_id
           OR NEW.amount_minor <> OLD.amount_minor OR NEW.trans_type <> OLD.trans_type
           OR NEW.transaction_id <> OLD.transaction_id OR NEW.created_at <> OLD.created_at
           OR NEW.running_balance_minor IS DISTINCT FROM OLD.running_balance_minor
           OR (OLD.status = 'AVAILABLE' AND NEW.status <> 'AVAILABLE') THEN
            RAISE EXCEPTION 'the ledger is append-only: only CLEARING -> AVAILABLE may change';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only()
    """,
    """
    CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only()
    """,
]
SQLITE_GUARDS = [
    """
    CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
    BEGIN SELECT RAISE(ABORT, 'ledger postings are never deleted'); END
    """,
    """
    CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted'); END
    """,
    """
    CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE ON ledger_postings
    WHEN NEW.entry_id <> OLD.entry_id OR NEW.account_id <> OLD.account_id
      OR NEW.amount_minor <> OLD.amount_minor OR NEW.trans_type <> OLD.trans_type
      OR NEW.transaction_id <> OLD.transaction_id
      OR NEW.running_balance_minor IS NOT OLD.running_balance_minor
      OR (OLD.status = 'AVAILABLE' AND NEW.status <> 'AVAILABLE')
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END
    """,
]


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("wallet_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("available_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["wallets.id"],
            name=op.f("fk_ledger_accounts_wallet_id_wallets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
        sa.UniqueConstraint("wallet_id", name=op.f("uq_ledger_accounts_wallet_id")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "invoice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("narrative", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_ledger_entries_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("key", name=op.f("uq_ledger_entries_key")),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.String(length=12), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("trans_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("running_balance_minor", sa.BigInteger(), nullable=True),
        sa.Column("narrative", sa.String(length=255), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_postings_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_postings_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_ledger_postings_transaction_id")),
    )
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_postings_account", ["account_id", "id"], unique=False)
        batch_op.create_index("ix_ledger_postings_entry", ["entry_id"], unique=False)

    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("clearing_delay_s", sa.Integer(), nullable=False, server_default="0")
        )
    # Every existing wallet gets its ledger account.
    op.execute(
        "INSERT INTO ledger_accounts"
        " (code, kind, currency, wallet_id, balance_minor, available_minor, created_at, updated_at)"
        " SELECT 'wallet:' || id, 'WALLET', currency, id, 0, 0,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM wallets"
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_GUARDS:
            op.execute(statement)
    else:
        for statement in SQLITE_GUARDS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_postings_balanced ON ledger_postings")
        op.execute("DROP TRIGGER IF EXISTS ledger_postings_append_only ON ledger_postings")
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_append_only ON ledger_entries")
        op.execute("DROP FUNCTION IF EXISTS ledger_entry_balanced()")
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("clearing_delay_s")

    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_postings_entry")
        batch_op.drop_index("ix_ledger_postings_account")

    op.drop_table("ledger_postings")
    op.drop_table("ledger_entries")
    op.drop_table("ledger_accounts")
