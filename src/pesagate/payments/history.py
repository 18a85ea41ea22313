"""Payments as the dashboard reads them: the overview's figures, the live states of listed
invoices, and an invoice's own record (its push, every callback as received, every question
reconciliation asked M-Pesa). Read-only; the tables stay payments'."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from pesagate.db import Database
from pesagate.errors import NotFound
from pesagate.kit.clock import utc_now
from pesagate.models import Invoice, InvoiceState, MpesaCallback, MpesaQuery
from pesagate.payments import repository

STATES_MAX = 200  # invoice ids one refresh asks about


@dataclass(frozen=True, slots=True)
class Period:
    days: int
    collected_minor: int  # COMPLETE invoices' value
    completed: int
    failed: int
    pending: int  # PENDING or PROCESSING

    @property
    def success_rate(self) -> float | None:
        """Of the invoices that are final, the share paid (None before any is final)."""
        final = self.completed + self.failed
        return self.completed / final if final else None


@dataclass(frozen=True, slots=True)
class Failure:
    code: str | None
    reason: str | None
    count: int


@dataclass(frozen=True, slots=True)
class Overview:
    periods: tuple[Period, ...]  # today (since midnight UTC), the last 7 and 30 UTC days
    failures: tuple[Failure, ...]  # the last 30 UTC days, most frequent first
    days: tuple[tuple[str, int], ...]  # collected per UTC day, the last 30, oldest first


def _period(days: int, states: dict[InvoiceState, tuple[int, int]]) -> Period:
    def count(state: InvoiceState) -> int:
        return states.get(state, (0, 0))[0]

    return Period(
        days,
        states.get(InvoiceState.COMPLETE, (0, 0))[1],
        count(InvoiceState.COMPLETE),
        count(InvoiceState.FAILED),
        count(InvoiceState.PENDING) + count(InvoiceState.PROCESSING),
    )


PERIODS = (1, 7, 30)  # UTC days, today included: the overview's today, week and month


async def overview(db: Database, business_pk: int, now: datetime | None = None) -> Overview:
    now = now or utc_now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = midnight - timedelta(days=PERIODS[-1] - 1)
    async with db.read() as session:
        rows = await repository.states_by_day(session, business_pk, first_day)
        failures = await repository.failures_since(session, business_pk, first_day)
    days = [(first_day + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(PERIODS[-1])]
    periods = []
    for length in PERIODS:
        window = set(days[-length:])
        states: dict[InvoiceState, tuple[int, int]] = {}
        for day, state, count, value in rows:
            if day in window:
                held = states.get(state, (0, 0))
                states[state] = (held[0] + count, held[1] + value)
        periods.append(_period(0 if length == 1 else length, states))
    collected = {day: value for day, state, _, value in rows if state == InvoiceState.COMPLETE}
    return Overview(
        tuple(periods),
        tuple(Failure(*failure) for failure in failures),
        tuple((day, collected.get(day, 0)) for day in days),
    )


async def live_states(db: Database, business_pk: int, invoice_ids: list[str]) -> dict[str, str]:
    """The states of these invoices of the business (others' ids are simply absent)."""
    async with db.read() as session:
        states = await repository.states_of(session, business_pk, invoice_ids[:STATES_MAX])
    return {invoice_id: state.value for invoice_id, state in states.items()}


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    invoice: Invoice
    callbacks: list[MpesaCallback]
    queries: list[MpesaQuery]


async def payment_record(db: Database, business_pk: int, invoice_id: str) -> PaymentRecord:
    """An invoice of this business with what M-Pesa said about it; another business's id is
    as unknown as a made-up one."""
    async with db.read() as session:
        invoice = await repository.invoice_of(session, business_pk, invoice_id)
        if invoice is None:
            raise NotFound("No invoice matches the given query.")
        callbacks = await repository.callbacks_of(session, invoice.id)
        queries = await repository.queries_of(session, invoice.id)
    return PaymentRecord(invoice, callbacks, queries)


async def latest_push(db: Database) -> Invoice | None:
    async with db.read() as session:
        return await repository.latest_invoice(session)


async def find_reference(db: Database, business_pk: int, reference: str) -> str | None:
    """Search: an invoice id or an M-Pesa receipt, as a person pastes it."""
    reference = reference.strip().upper()[:40]
    if not reference:
        return None
    async with db.read() as session:
        return await repository.invoice_id_by_reference(session, business_pk, reference)
