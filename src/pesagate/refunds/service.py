"""Refunds' use cases: create, read, and the reversal's steps. Each opens its own transaction;
the SQL is in `repository.py`, the transitions in `state.py`.

Sending a reversal is three steps, like the STK push: (1) commit `reversal_sent_at` on the
refund (the intent), (2) call Daraja outside any transaction, (3) commit its answer. A refund
whose intent is committed is never sent again, whatever happens after (a crash, a lost answer):
Transaction Status tells what M-Pesa did (`tasks.py`)."""

from dataclasses import dataclass

from pesagate.db import AsyncSession, Database
from pesagate.errors import NotFound, ValidationFailed
from pesagate.idempotency import service as idempotency
from pesagate.idempotency.service import Claim
from pesagate.kit import ids
from pesagate.kit.clock import utc_now
from pesagate.kit.money import format_minor
from pesagate.kit.pagination import Page
from pesagate.ledger.holds import place_hold
from pesagate.models import Invoice, InvoiceState, Refund, RefundStatus
from pesagate.mpesa.results import (
    InitiatorRequest,
    RequestAccepted,
    RequestNotSent,
    RequestRejected,
    RequestUnknown,
)
from pesagate.payments.refunding import (
    invoice_to_refund,
    invoices_by_pk,
    left_to_refund,
    refunded_invoice,
    reserve_refund,
)
from pesagate.refunds import repository, responses, state
from pesagate.refunds.events import reversal_event
from pesagate.refunds.repository import RefundFilter
from pesagate.refunds.schemas import RefundCreate
from pesagate.refunds.views import refund_json
from pesagate.worker.jobs import add_job

# ---------------------------------------------------------------- create


async def create_refund(
    db: Database, business_pk: int, request: RefundCreate, held: Claim | None = None
) -> responses.Chargeback:
    """Check the invoice and the amount, hold the wallet debit, and leave the reversal to the
    worker: all in one transaction under the invoice's lock, so that two refunds of one
    invoice are decided one after the other."""
    async with db.transaction() as session:
        invoice = await invoice_to_refund(session, business_pk, request.invoice_ref)
        _check_refundable(invoice, request.amount)
        assert invoice is not None
        refund = await open_refund(session, invoice, request)
        await idempotency.bind(session, held, refund.id)
        answer = refund_json(refund, invoice)
        await idempotency.complete_in(session, held, answer)
    return answer


def _check_refundable(invoice: Invoice | None, amount_minor: int) -> None:
    if invoice is None:
        raise ValidationFailed.field("invoice_id", "No invoice of yours has this id.")
    if invoice.state != InvoiceState.COMPLETE:
        raise ValidationFailed.field(
            "invoice_id", f"Only COMPLETE invoices can be refunded; this one is {invoice.state}."
        )
    if not invoice.mpesa_reference:
        raise ValidationFailed.field(
            "invoice_id",
            "This payment's M-Pesa receipt is not known yet, and a reversal needs it.",
        )
    left = left_to_refund(invoice)
    if left <= 0:
        raise ValidationFailed.field("amount", "Nothing is left to refund on this invoice.")
    if amount_minor > left:
        raise ValidationFailed.field(
            "amount", f"Ensure this value is at most {format_minor(left)} (left to refund)."
        )
    if amount_minor != invoice.value_minor:
        raise ValidationFailed.field(
            "amount",
            "M-Pesa reverses whole payments only: refund the full "
            f"{format_minor(invoice.value_minor)} {invoice.currency}.",
        )


async def open_refund(session: AsyncSession, invoice: Invoice, request: RefundCreate) -> Refund:
    """The refund (PENDING), its hold, its job and its first event."""
    reserve_refund(invoice, request.amount)
    refund = Refund(
        chargeback_id=f"CB_{ids.random_code(10)}",
        business_id=invoice.business_id,
        invoice_id=invoice.id,
        amount_minor=request.amount,
        wallet_debit_minor=request.amount - invoice.charges_minor,
        currency=invoice.currency,
        reason=request.reason,
        reason_details=request.reason_details,
        status=RefundStatus.PENDING,
        resolution="",
        staff_created=False,
        token=ids.callback_token(),
        status_queries=0,
    )
    repository.add_refund(session, refund)
    await session.flush()
    await place_hold(
        session, invoice.wallet_id, state.refund_key(refund.id), refund.wallet_debit_minor
    )
    key = state.refund_key(refund.id)
    await add_job(session, state.REFUND_JOB, key, utc_now(), {"refund_pk": refund.id})
    await reversal_event(session, refund, invoice)
    return refund


# ---------------------------------------------------------------- reads


async def refund_detail(db: Database, business_pk: int, chargeback_id: str) -> responses.Chargeback:
    async with db.read() as session:
        refund = await repository.refund_of(session, business_pk, chargeback_id)
        if refund is None:
            raise NotFound("No chargeback matches the given query.")
        invoices = await invoices_by_pk(session, {refund.invoice_id})
    return refund_json(refund, invoices[refund.invoice_id])


async def list_refunds(
    db: Database, business_pk: int, where: RefundFilter, page: Page
) -> tuple[int, list[responses.Chargeback]]:
    async with db.read() as session:
        count, refunds = await repository.refunds_page(
            session, business_pk, where, page.offset, page.size
        )
        invoices = await invoices_by_pk(session, {refund.invoice_id for refund in refunds})
    return count, [refund_json(refund, invoices[refund.invoice_id]) for refund in refunds]


async def refund_by_pk(db: Database, refund_pk: int) -> Refund | None:
    async with db.read() as session:
        return await repository.refund_by_pk(session, refund_pk)


# ---------------------------------------------------------------- the reversal's steps


@dataclass(frozen=True, slots=True)
class Sending:
    """What the reversal request needs, read when its intent was committed."""

    chargeback_id: str
    token: str
    receipt: str
    amount_minor: int
    reason: str


async def claim_sending(db: Database, refund_pk: int) -> Sending | None:
    """Step 1: commit the intent to send. None if it was committed before (by this or another
    process): then the reversal may have gone, and is never sent again."""
    async with db.transaction() as session:
        refund, invoice = await locked(session, refund_pk)
        if refund.status != RefundStatus.PENDING or refund.reversal_sent_at is not None:
            return None
        refund.reversal_sent_at = utc_now()
        assert invoice.mpesa_reference is not None
        return Sending(
            refund.chargeback_id,
            refund.token,
            invoice.mpesa_reference,
            refund.amount_minor,
            refund.reason,
        )


async def record_acknowledgement(db: Database, refund_pk: int, answer: InitiatorRequest) -> None:
    """Step 3: what Daraja answered the reversal request."""
    async with db.transaction() as session:
        refund, invoice = await locked(session, refund_pk)
        match answer:
            case RequestAccepted():
                await state.processing(
                    session,
                    refund,
                    invoice,
                    answer.originator_conversation_id,
                    answer.conversation_id,
                )
            case RequestRejected():
                reason = f"M-Pesa refused the reversal: {answer.error_code} {answer.error_message}"
                await state.cancel(session, refund, invoice, answer.error_code, reason.strip())
            case RequestNotSent():
                # Nothing left this process: the intent is withdrawn and the worker sends later.
                if refund.status == RefundStatus.PENDING:
                    refund.reversal_sent_at = None
            case RequestUnknown():
                pass  # it may have reached M-Pesa: Transaction Status will tell


async def note_status_query(db: Database, refund_pk: int) -> None:
    async with db.transaction() as session:
        refund, _ = await locked(session, refund_pk)
        refund.status_queries += 1


async def locked(session: AsyncSession, refund_pk: int) -> tuple[Refund, Invoice]:
    """The refund and its invoice, locked invoice first (the order every writer keeps)."""
    refund = await repository.refund_by_pk(session, refund_pk)
    assert refund is not None
    invoice = await refunded_invoice(session, refund.invoice_id)
    locked_refund = await repository.lock_refund(session, id=refund_pk)
    assert locked_refund is not None
    return locked_refund, invoice


async def refund_receipt(db: Database, refund: Refund) -> str:
    """The M-Pesa receipt of the payment a refund gives back."""
    async with db.read() as session:
        invoices = await invoices_by_pk(session, {refund.invoice_id})
    receipt = invoices[refund.invoice_id].mpesa_reference
    assert receipt is not None  # refunds are only opened for payments with a receipt
    return receipt
