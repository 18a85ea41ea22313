"""Customers, invoices (with their payment session) and raw M-Pesa callbacks."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pesagate.kit.clock import utc_now
from pesagate.models.base import Base, BigIntId, Timestamps, enum_column
from pesagate.models.ledger import LineStatus
from pesagate.models.merchants import Business, Environment, Tariff, Wallet


class InvoiceState(StrEnum):
    PENDING = "PENDING"  # created; the push is being sent, or its outcome is unknown
    PROCESSING = "PROCESSING"  # Daraja accepted the push; the customer has the prompt
    COMPLETE = "COMPLETE"  # paid: final, money cannot leave it
    FAILED = "FAILED"  # not paid; a later success still completes it


class CallbackOutcome(StrEnum):
    APPLIED = "APPLIED"  # changed the invoice
    DUPLICATE = "DUPLICATE"  # the same body was already received for this invoice
    IGNORED = "IGNORED"  # a result the invoice's state does not admit (recorded only)
    MISMATCH = "MISMATCH"  # a success whose amount or phone disagrees: left for reconciliation
    UNKNOWN_TOKEN = "UNKNOWN_TOKEN"  # no invoice has this token
    UNPARSEABLE = "UNPARSEABLE"  # not a Daraja callback body
    FORBIDDEN_SOURCE = "FORBIDDEN_SOURCE"  # from outside PESAGATE_CALLBACK_ALLOWED_IPS
    AWAITING_CONFIRMATION = "AWAITING_CONFIRMATION"  # a success to confirm by STK query first
    ERROR = "ERROR"  # applying it failed; stored with the error, left for reconciliation


class Customer(Timestamps, Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("business_id", "phone_number"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(16), unique=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(String(12))
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    first_name: Mapped[str | None] = mapped_column(String(100), default=None)
    last_name: Mapped[str | None] = mapped_column(String(100), default=None)
    country: Mapped[str] = mapped_column(String(2), default="KE")
    zipcode: Mapped[str | None] = mapped_column(String(16), default=None)
    provider: Mapped[str] = mapped_column(String(16), default="M-PESA")


class Invoice(Timestamps, Base):
    """An STK push collection and its payment session (one session per invoice)."""

    __tablename__ = "invoices"
    __table_args__ = (
        Index("ix_invoices_business_created", "business_id", "created_at"),
        Index("ix_invoices_business_api_ref", "business_id", "api_ref"),
        # A receipt found on the statement must not already belong to another invoice.
        Index("ix_invoices_mpesa_reference", "mpesa_reference"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(10), unique=True)
    session_id: Mapped[str] = mapped_column(String(36), unique=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    environment: Mapped[Environment] = mapped_column(enum_column(Environment, 8))
    state: Mapped[InvoiceState] = mapped_column(
        enum_column(InvoiceState, 12), default=InvoiceState.PENDING
    )
    provider: Mapped[str] = mapped_column(String(16), default="M-PESA")
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    amount_minor: Mapped[int] = mapped_column(BigInteger, doc="requested, whole shillings in cents")
    value_minor: Mapped[int] = mapped_column(
        BigInteger, doc="what the customer pays (the STK amount)"
    )
    charges_minor: Mapped[int] = mapped_column(BigInteger, doc="the gateway's fee")
    net_amount_minor: Mapped[int] = mapped_column(BigInteger, doc="what the merchant receives")
    refunded_minor: Mapped[int] = mapped_column(
        BigInteger, default=0, doc="of value_minor, given back or being given back (refunds)"
    )
    mobile_tarrif: Mapped[Tariff] = mapped_column(enum_column(Tariff, 16))
    account: Mapped[str] = mapped_column(String(12), doc="the paying phone")
    api_ref: Mapped[str] = mapped_column(String(140))
    clearing_status: Mapped[LineStatus | None] = mapped_column(
        enum_column(LineStatus, 12), default=None
    )
    mpesa_reference: Mapped[str | None] = mapped_column(String(32), default=None)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_reason: Mapped[str | None] = mapped_column(String(300), default=None)
    failed_code: Mapped[str | None] = mapped_column(String(32), default=None)
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    checkout_request_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    merchant_request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    push_error: Mapped[str | None] = mapped_column(Text, default=None, doc="raw Daraja answer")
    host: Mapped[str] = mapped_column(String(255), default="", doc="the server's public URL")
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Pushed inside a hosted checkout (pesagate.checkout), and through which payment link.
    checkout_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkout_sessions.id"), default=None, index=True
    )
    payment_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_links.id"), default=None, index=True
    )

    business: Mapped[Business] = relationship(lazy="raise")
    # Always needed to render an invoice; inner joins on primary keys cost almost nothing.
    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    wallet: Mapped[Wallet] = relationship(lazy="joined", innerjoin=True)


class MpesaCallback(Base):
    """Every callback received, raw, with where and when it came from."""

    __tablename__ = "mpesa_callbacks"
    __table_args__ = (
        Index("ix_mpesa_callbacks_invoice_sha", "invoice_id", "body_sha256"),
        Index("ix_mpesa_callbacks_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), default=None)
    token: Mapped[str] = mapped_column(String(64))
    checkout_request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    result_code: Mapped[str | None] = mapped_column(String(32), default=None)
    body_sha256: Mapped[str] = mapped_column(String(64))
    raw_body: Mapped[str] = mapped_column(
        Text, doc="as received; only a prefix when the callback spoke for no invoice"
    )
    body_size: Mapped[int | None] = mapped_column(Integer, default=None, doc="bytes received")
    source_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    outcome: Mapped[CallbackOutcome] = mapped_column(enum_column(CallbackOutcome, 24))
    note: Mapped[str | None] = mapped_column(String(300), default=None)
    received_at: Mapped[datetime] = mapped_column(default=utc_now)


class QueryKind(StrEnum):
    STK_QUERY = "stk_query"  # STK Push Query by CheckoutRequestID
    STATEMENT = "statement"  # Pull Transactions: the shortcode's statement
    TRANSACTION_STATUS = "txn_status"  # Transaction Status about a held success's receipt


class MpesaQuery(Base):
    """What reconciliation asked M-Pesa about an invoice, and what it answered: the payment
    timeline shows how a payment without a callback was settled."""

    __tablename__ = "mpesa_queries"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    kind: Mapped[QueryKind] = mapped_column(enum_column(QueryKind, 16))
    answer: Mapped[str] = mapped_column(String(40), doc="the answer's kind")
    result_code: Mapped[str | None] = mapped_column(String(32), default=None)
    detail: Mapped[str | None] = mapped_column(String(300), default=None)
    asked_at: Mapped[datetime] = mapped_column(default=utc_now)
