"""hosted checkout: checkout_sessions, payment_links; invoices remember both

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 17:00:00
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamps() -> list[sa.Column[datetime]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "payment_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("link_id", sa.String(length=36), nullable=False),
        sa.Column("business_id", ID, nullable=False),
        sa.Column("environment", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=140), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("usage_limit", sa.Integer(), nullable=False),
        sa.Column("redirect_url", sa.String(length=2048), nullable=True),
        sa.Column("mobile_tarrif", sa.String(length=16), nullable=True),
        sa.Column("wallet_id", sa.String(length=10), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_payment_links_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_links")),
        sa.UniqueConstraint("link_id", name=op.f("uq_payment_links_link_id")),
    )
    op.create_index(
        "ix_payment_links_business_created", "payment_links", ["business_id", "created_at"]
    )
    op.create_table(
        "checkout_sessions",
        sa.Column("id", ID, nullable=False),
        sa.Column("checkout_id", sa.String(length=36), nullable=False),
        sa.Column("business_id", ID, nullable=False),
        sa.Column("environment", sa.String(length=8), nullable=False),
        sa.Column("payment_link_id", ID, nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("mobile_tarrif", sa.String(length=16), nullable=True),
        sa.Column("wallet_id", sa.String(length=10), nullable=True),
        sa.Column("api_ref", sa.String(length=70), nullable=True),
        sa.Column("unique_api_ref", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("first_name", sa.String(length=45), nullable=True),
        sa.Column("last_name", sa.String(length=45), nullable=True),
        sa.Column("phone_number", sa.String(length=12), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("redirect_url", sa.String(length=2048), nullable=True),
        sa.Column("callback_url", sa.String(length=2048), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("comment", sa.String(length=500), nullable=True),
        sa.Column("version", sa.String(length=16), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_checkout_sessions_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payment_link_id"],
            ["payment_links.id"],
            name=op.f("fk_checkout_sessions_payment_link_id_payment_links"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_sessions")),
        sa.UniqueConstraint("checkout_id", name=op.f("uq_checkout_sessions_checkout_id")),
    )
    op.create_index(
        "ix_checkout_sessions_business_api_ref", "checkout_sessions", ["business_id", "api_ref"]
    )
    op.create_index(
        "ix_checkout_sessions_payment_link_id", "checkout_sessions", ["payment_link_id"]
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkout_session_id", ID, nullable=True))
        batch_op.add_column(sa.Column("payment_link_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_invoices_checkout_session_id_checkout_sessions"),
            "checkout_sessions",
            ["checkout_session_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_invoices_payment_link_id_payment_links"),
            "payment_links",
            ["payment_link_id"],
            ["id"],
        )
        batch_op.create_index("ix_invoices_checkout_session_id", ["checkout_session_id"])
        batch_op.create_index("ix_invoices_payment_link_id", ["payment_link_id"])


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_payment_link_id")
        batch_op.drop_index("ix_invoices_checkout_session_id")
        batch_op.drop_constraint(
            batch_op.f("fk_invoices_payment_link_id_payment_links"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_invoices_checkout_session_id_checkout_sessions"), type_="foreignkey"
        )
        batch_op.drop_column("payment_link_id")
        batch_op.drop_column("checkout_session_id")
    op.drop_index("ix_checkout_sessions_payment_link_id", table_name="checkout_sessions")
    op.drop_index("ix_checkout_sessions_business_api_ref", table_name="checkout_sessions")
    op.drop_table("checkout_sessions")
    op.drop_index("ix_payment_links_business_created", table_name="payment_links")
    op.drop_table("payment_links")
