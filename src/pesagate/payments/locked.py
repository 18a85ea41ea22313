"""An invoice as the state machine works on it, and the plain form Daraja's callbacks lock.

The state machine (`state.py`) reads and sets an invoice's columns and nothing else, so it
takes either form (`InvoiceRecord`): a `LockedInvoice` on the callback path, read with one
Core statement and saved with one Core UPDATE of what changed, or an ORM instance on every
other path (`repository.lock_invoice`: reconciliation, statements, Transaction Status
results, refunds, a push answer that a callback beat, a callback that failed to apply). A
`LockedInvoice` is not in any session: the unit of work never sees it, so nothing is loaded,
tracked or flushed for it, and unless something else on the path uses the session (asking
for a confirmation query does) the transaction commits without going through it. Its columns hold
immutable values only (`changes()` compares them; a test keeps it so).
"""

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from pesagate.models import Environment, Invoice, InvoiceState, LineStatus, Tariff
from pesagate.payments.views import WalletRef


@dataclass(slots=True, eq=False)
class LockedInvoice:
    """Every column of a locked `invoices` row (the names are the model's) and its wallet's
    public id, for rendering. `changes()` is what was set since it was read or saved."""

    id: int
    invoice_id: str
    session_id: str
    business_id: int
    customer_id: int
    wallet_id: int
    environment: Environment
    state: InvoiceState
    provider: str
    currency: str
    amount_minor: int
    value_minor: int
    charges_minor: int
    net_amount_minor: int
    refunded_minor: int
    mobile_tarrif: Tariff
    account: str
    api_ref: str
    clearing_status: LineStatus | None
    mpesa_reference: str | None
    retry_count: int
    failed_reason: str | None
    failed_code: str | None
    callback_token: str
    checkout_request_id: str | None
    merchant_request_id: str | None
    push_error: str | None
    host: str
    completed_at: datetime | None
    checkout_session_id: int | None
    payment_link_id: int | None
    created_at: datetime
    updated_at: datetime
    wallet: WalletRef
    _saved: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._saved = self._columns()

    def changes(self) -> dict[str, Any]:
        """The columns set to another value since the row was read or last saved."""
        return {key: value for key, value in self._columns().items() if value != self._saved[key]}

    def saved(self) -> None:
        """What it holds now is what the row holds."""
        self._saved = self._columns()

    def _columns(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


COLUMNS = tuple(f.name for f in fields(LockedInvoice) if f.name not in ("wallet", "_saved"))

# What the state machine takes.
InvoiceRecord = Invoice | LockedInvoice
