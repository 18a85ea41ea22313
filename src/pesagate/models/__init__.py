"""All tables. Importing this package registers every model on `Base.metadata`."""

from pesagate.models.accounts import DashboardSession, Invitation, Membership, Role, User
from pesagate.models.base import Base
from pesagate.models.checkout import CheckoutSession, PaymentLink
from pesagate.models.idempotency import IdempotencyKey, KeyState
from pesagate.models.jobs import Job
from pesagate.models.ledger import (
    AccountKind,
    EntryKind,
    HoldStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerHold,
    LedgerPosting,
    LineStatus,
    TransType,
)
from pesagate.models.merchants import (
    ApiKey,
    Business,
    Environment,
    KeyKind,
    Tariff,
    Wallet,
    WalletType,
)
from pesagate.models.payments import (
    CallbackOutcome,
    Customer,
    Invoice,
    InvoiceState,
    MpesaCallback,
    MpesaQuery,
    QueryKind,
)
from pesagate.models.refunds import Refund, RefundStatus, ResultKind, ResultOutcome, ReversalResult
from pesagate.models.webhooks import (
    EventStatus,
    Topic,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "AccountKind",
    "ApiKey",
    "Base",
    "Business",
    "CallbackOutcome",
    "CheckoutSession",
    "Customer",
    "DashboardSession",
    "EntryKind",
    "Environment",
    "EventStatus",
    "HoldStatus",
    "IdempotencyKey",
    "Invitation",
    "Invoice",
    "InvoiceState",
    "Job",
    "KeyKind",
    "KeyState",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerHold",
    "LedgerPosting",
    "LineStatus",
    "Membership",
    "MpesaCallback",
    "MpesaQuery",
    "PaymentLink",
    "QueryKind",
    "Refund",
    "RefundStatus",
    "ResultKind",
    "ResultOutcome",
    "ReversalResult",
    "Role",
    "Tariff",
    "Topic",
    "TransType",
    "User",
    "Wallet",
    "WalletType",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookEvent",
]
