"""All tables. Importing this package registers every model on `Base.metadata`."""

from pesagate.models.base import Base
from pesagate.models.idempotency import IdempotencyKey, KeyState
from pesagate.models.jobs import Job
from pesagate.models.ledger import (
    AccountKind,
    EntryKind,
    LedgerAccount,
    LedgerEntry,
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
from pesagate.models.payments import CallbackOutcome, Customer, Invoice, InvoiceState, MpesaCallback
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
    "Customer",
    "EntryKind",
    "Environment",
    "EventStatus",
    "IdempotencyKey",
    "Invoice",
    "InvoiceState",
    "Job",
    "KeyKind",
    "KeyState",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerPosting",
    "LineStatus",
    "MpesaCallback",
    "Tariff",
    "Topic",
    "TransType",
    "Wallet",
    "WalletType",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookEvent",
]
