"""The invoice state machine (SPEC section 5). Every transition happens on a locked row, in
the transaction that also writes what the transition causes."""

from pesagate import metrics
from pesagate.db import AsyncSession
from pesagate.kit.clock import utc_now
from pesagate.ledger.postings import post_collection
from pesagate.models import InvoiceState
from pesagate.payments.events import collection_event
from pesagate.payments.locked import InvoiceRecord
from pesagate.payments.views import InvoiceView
from pesagate.worker.jobs import cancel

PENDING, PROCESSING, COMPLETE, FAILED = (
    InvoiceState.PENDING,
    InvoiceState.PROCESSING,
    InvoiceState.COMPLETE,
    InvoiceState.FAILED,
)

# COMPLETE is terminal: money that arrived never leaves. FAILED is not: a success reported
# later (a late callback, a query) means the customer paid, and the money is not dropped.
ALLOWED: dict[InvoiceState, frozenset[InvoiceState]] = {
    PENDING: frozenset({PROCESSING, COMPLETE, FAILED}),
    PROCESSING: frozenset({COMPLETE, FAILED}),
    FAILED: frozenset({COMPLETE}),
    COMPLETE: frozenset(),
}

NO_RESULT_CODE = "NO_RESULT"
RECONCILE_JOB = "reconcile_invoice"


def reconcile_job_key(invoice_pk: int) -> str:
    return f"reconcile:{invoice_pk}"


def can_move(invoice: InvoiceRecord, target: InvoiceState) -> bool:
    return target in ALLOWED[invoice.state]


async def mark_processing(session: AsyncSession, invoice: InvoiceRecord) -> bool:
    if not can_move(invoice, PROCESSING):
        return False
    invoice.state = PROCESSING
    await _changed(session, invoice)
    return True


async def complete(session: AsyncSession, invoice: InvoiceRecord, receipt: str | None) -> bool:
    """Mark paid. False (and no change) if the invoice is already COMPLETE."""
    if not can_move(invoice, COMPLETE):
        if receipt and invoice.mpesa_reference is None:
            invoice.mpesa_reference = receipt  # completed by a query; the callback tells us more
        return False
    invoice.state = COMPLETE
    invoice.mpesa_reference = receipt or invoice.mpesa_reference
    invoice.failed_code = None
    invoice.failed_reason = None
    invoice.completed_at = utc_now()
    await cancel(session, reconcile_job_key(invoice.id))
    if (cleared := await post_collection(session, invoice)) is not None:
        invoice.clearing_status = cleared
    await _changed(session, invoice)
    return True


async def fail(session: AsyncSession, invoice: InvoiceRecord, code: str, reason: str) -> bool:
    """Mark not paid. False (and no change) unless the invoice is still PENDING or PROCESSING."""
    if invoice.state not in (PENDING, PROCESSING):
        return False
    invoice.state = FAILED
    invoice.failed_code = code[:32]
    invoice.failed_reason = (reason or "The payment failed.")[:300]
    await cancel(session, reconcile_job_key(invoice.id))
    await _changed(session, invoice)
    return True


async def _changed(session: AsyncSession, invoice: InvoiceRecord) -> None:
    invoice.updated_at = utc_now()
    await announce(session, invoice.business_id, invoice.id, invoice)


async def announce(
    session: AsyncSession, business_pk: int, invoice_pk: int, invoice: InvoiceRecord | InvoiceView
) -> None:
    """Every state change is announced, in its own transaction (the webhook outbox)."""
    await collection_event(session, business_pk, invoice_pk, invoice)
    metrics.INVOICE_TRANSITIONS.labels(invoice.state).inc()
