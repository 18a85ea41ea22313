"""A refund's transitions, each in the caller's transaction with the refund's invoice and the
refund locked (in that order, as everywhere): the ledger's hold, the invoice's refunded amount,
the event and the refund's job change together.

PENDING -> PROCESSING -> COMPLETED | CANCELLED | DISPUTED; PENDING may end directly (a Result
can beat its acknowledgement). COMPLETED, CANCELLED and DISPUTED are final."""

import structlog

from pesagate.db import AsyncSession
from pesagate.kit.clock import utc_now
from pesagate.ledger.holds import capture_refund, hold_again, release_hold
from pesagate.models import Invoice, Refund, RefundStatus
from pesagate.mpesa.protocol import ReversalCode
from pesagate.payments.refunding import cancel_refund, left_to_refund, reserve_refund
from pesagate.refunds.events import reversal_event
from pesagate.worker.jobs import cancel as cancel_job

log = structlog.get_logger("pesagate.refunds")

REFUND_JOB = "refund_reversal"
FINAL = frozenset({RefundStatus.COMPLETED, RefundStatus.CANCELLED, RefundStatus.DISPUTED})


def refund_key(refund_pk: int) -> str:
    """The key of the refund's hold, its REFUND entry and its job."""
    return f"refund:{refund_pk}"


async def processing(
    session: AsyncSession,
    refund: Refund,
    invoice: Invoice,
    originator_conversation_id: str,
    conversation_id: str,
) -> bool:
    """M-Pesa acknowledged the reversal. The ids are kept even if a Result came first."""
    refund.originator_conversation_id = originator_conversation_id
    refund.conversation_id = conversation_id
    if refund.status != RefundStatus.PENDING:
        return False
    refund.status = RefundStatus.PROCESSING
    await reversal_event(session, refund, invoice)
    return True


async def complete(
    session: AsyncSession,
    refund: Refund,
    invoice: Invoice,
    receipt: str | None,
    code: str,
) -> bool:
    """M-Pesa reversed the payment: the hold becomes the REFUND entry, once."""
    if refund.status in FINAL:
        return False
    await capture_refund(
        session,
        wallet_pk=invoice.wallet_id,
        hold_key=refund_key(refund.id),
        entry_key=refund_key(refund.id),
        invoice_pk=invoice.id,
        amount_minor=refund.amount_minor,
        charges_minor=refund.amount_minor - refund.wallet_debit_minor,
        currency=refund.currency,
        reference=f"{refund.chargeback_id} {invoice.mpesa_reference or invoice.invoice_id}",
    )
    refund.status = RefundStatus.COMPLETED
    refund.reversal_receipt = receipt
    refund.result_code = code
    refund.completed_at = utc_now()
    await _ended(session, refund, invoice)
    return True


async def complete_late(
    session: AsyncSession, refund: Refund, invoice: Invoice, receipt: str | None
) -> bool:
    """M-Pesa carried out a reversal after its refund was CANCELLED (it was sent, and Transaction
    Status still showed the payment unreversed past the grace). The money left: the refund
    counts again, its hold is held again and captured, even if the wallet's available balance no
    longer covers it (`ledger verify` then reports the shortfall). If another refund of the
    payment took its place meanwhile, a person must settle it: nothing changes."""
    if refund.status != RefundStatus.CANCELLED or refund.reversal_sent_at is None:
        return False
    if left_to_refund(invoice) < refund.amount_minor:
        log.error("a late reversal for a replaced refund", chargeback_id=refund.chargeback_id)
        return False
    if not await hold_again(session, invoice.wallet_id, refund_key(refund.id)):
        return False
    reserve_refund(invoice, refund.amount_minor)
    refund.status = RefundStatus.PENDING  # back on its way, then captured as any other
    refund.resolution = "M-Pesa carried the reversal out after it was taken as never done."
    return await complete(session, refund, invoice, receipt, ReversalCode.SUCCESS)


async def cancel(
    session: AsyncSession, refund: Refund, invoice: Invoice, code: str | None, resolution: str
) -> bool:
    """Nothing was given back: the hold is released and the invoice can be refunded again."""
    if refund.status in FINAL:
        return False
    await release_hold(session, invoice.wallet_id, refund_key(refund.id))
    cancel_refund(invoice, refund.amount_minor)
    refund.status = RefundStatus.CANCELLED
    refund.result_code = code
    refund.resolution = resolution[:300]
    await _ended(session, refund, invoice)
    return True


async def dispute(
    session: AsyncSession, refund: Refund, invoice: Invoice, code: str, resolution: str
) -> bool:
    """M-Pesa says the payment was already reversed, not by this refund: the amount stays held
    until someone looks (README, "Refunds")."""
    if refund.status in FINAL:
        return False
    refund.status = RefundStatus.DISPUTED
    refund.result_code = code
    refund.resolution = resolution[:300]
    await _ended(session, refund, invoice)
    log.warning("refund disputed", chargeback_id=refund.chargeback_id, code=code)
    return True


async def _ended(session: AsyncSession, refund: Refund, invoice: Invoice) -> None:
    await cancel_job(session, refund_key(refund.id))
    await reversal_event(session, refund, invoice)
