"""All tables. Importing this package registers every model on `Base.metadata`."""

from pesagate.models.base import Base
from pesagate.models.jobs import Job
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

__all__ = [
    "ApiKey",
    "Base",
    "Business",
    "CallbackOutcome",
    "Customer",
    "Environment",
    "Invoice",
    "InvoiceState",
    "Job",
    "KeyKind",
    "MpesaCallback",
    "Tariff",
    "Wallet",
    "WalletType",
]
