"""Confirming a held success by its receipt, with Daraja's Transaction Status.

A success callback held for confirmation (AWAITING_CONFIRMATION) carries an M-Pesa receipt,
and so may a forged one posted beside it (or instead of it, when M-Pesa's own was lost). An STK
query says whether the customer paid, never with which receipt. So, when an initiator is
configured (`Settings.transaction_status_enabled`), reconciliation asks Transaction Status
about each held receipt (the latest few); M-Pesa posts the Results to
`/callbacks/stk/{token}/status`. A receipt is the payment's only when M-Pesa says it is
Completed for exactly the invoice's value, in a Result carrying the ConversationID with which
M-Pesa acknowledged pesagate's question about that receipt (anyone who knows the callback URL
can post a Result; only M-Pesa knows that id), a held callback naming the invoice's own checkout
carried it, and no other invoice holds it: then the invoice completes with it (or, completed
earlier without a receipt, learns it). Every Result is stored (with the invoice's callbacks,
noted "transaction status")."""

import hashlib

import structlog

from pesagate import metrics
from pesagate.config import Settings
from pesagate.db import AsyncSession, Database
from pesagate.models import CallbackOutcome, Invoice, InvoiceState, MpesaCallback, QueryKind
from pesagate.mpesa.client import DarajaClient, RequestAccepted
from pesagate.mpesa.protocol import STATUS_COMPLETED
from pesagate.mpesa.reversal import InitiatorResult, parse_result, status_report
from pesagate.payments import repository, state
from pesagate.payments.callbacks import (
    CallbackPolicy,
    Received,
    RefusalAllowance,
    held_success_receipts,
)

log = structlog.get_logger("pesagate.reconcile")

NOTE = "transaction status"
RAW_MAX_CHARS = 8192
UNKNOWN_PREFIX_CHARS = 256


async def ask_about_receipts(
    db: Database, daraja: DarajaClient, settings: Settings, invoice: Invoice
) -> int:
    """Ask Transaction Status about each held success's receipt; how many were asked about."""
    async with db.read() as session:
        receipts = await held_success_receipts(session, invoice)
    base = f"{settings.public_url.rstrip('/')}/callbacks/stk/{invoice.callback_token}"
    for receipt in receipts:
        answer = await daraja.transaction_status(
            receipt=receipt,
            result_url=f"{base}/status",
            timeout_url=f"{base}/status",
            remarks=f"Confirm payment {invoice.invoice_id}",
        )
        metrics.DARAJA_CALLS.labels("transaction_status", type(answer).__name__).inc()
        log.info(
            "receipt asked about",
            invoice_id=invoice.invoice_id,
            receipt=receipt,
            answer=type(answer).__name__,
        )
        await _remember(db, invoice.id, receipt, answer)
    return len(receipts)


async def _remember(db: Database, invoice_pk: int, receipt: str, answer: object) -> None:
    """The question goes on the payment's timeline; an acknowledged one with its ConversationID,
    which the Result must carry (`_apply`): M-Pesa alone knows it."""
    if isinstance(answer, RequestAccepted):
        detail = repository.status_query_detail(receipt, answer.conversation_id)
    else:
        detail = f"receipt {receipt}"
    async with db.transaction() as session:
        repository.record_query(
            session, invoice_pk, QueryKind.TRANSACTION_STATUS, type(answer).__name__, None, detail
        )


async def receive_status(
    db: Database,
    token: str,
    raw: bytes,
    source_ip: str | None,
    policy: CallbackPolicy,
    allow_refusal: RefusalAllowance | None = None,
) -> Received:
    parsed = parse_result(raw)
    async with db.transaction() as session:
        invoice = await repository.lock_invoice(session, callback_token=token[:64])
        if not policy.source_allowed(source_ip):
            outcome, note = CallbackOutcome.FORBIDDEN_SOURCE, f"source {source_ip} not allowed"
        elif invoice is None:
            outcome, note = CallbackOutcome.UNKNOWN_TOKEN, NOTE
        elif parsed is None:
            outcome, note = CallbackOutcome.UNPARSEABLE, NOTE
        else:
            outcome, note = await _apply(session, invoice, parsed)
        evidence = invoice is not None and outcome != CallbackOutcome.FORBIDDEN_SOURCE
        if not evidence and allow_refusal is not None and not await allow_refusal():
            return Received(outcome, stored=False)
        text = raw[: RAW_MAX_CHARS if evidence else UNKNOWN_PREFIX_CHARS]
        session.add(
            MpesaCallback(
                invoice_id=invoice.id if evidence and invoice else None,
                token=token[:64],
                result_code=parsed.result_code[:32] if parsed else None,
                body_sha256=hashlib.sha256(raw).hexdigest(),
                raw_body=text.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
                body_size=len(raw),
                source_ip=source_ip,
                outcome=outcome,
                note=note[:300],
            )
        )
    return Received(outcome, invoice_id=invoice.invoice_id if invoice else None)


async def _apply(
    session: AsyncSession, invoice: Invoice, parsed: InitiatorResult
) -> tuple[CallbackOutcome, str]:
    if invoice.state == InvoiceState.COMPLETE and invoice.mpesa_reference is not None:
        return CallbackOutcome.IGNORED, f"{NOTE}: already COMPLETE"
    if not parsed.succeeded:
        return CallbackOutcome.IGNORED, f"{NOTE}: {parsed.result_code} {parsed.result_desc}"
    report = status_report(parsed)
    receipt = report.receipt
    why = None
    if receipt is None or receipt not in await held_success_receipts(session, invoice):
        why = f"receipt {receipt} is not a held success's"
    elif not parsed.conversation_id or not await repository.asked_status(
        session, invoice.id, receipt, parsed.conversation_id
    ):
        why = f"ConversationID {parsed.conversation_id} answers no question pesagate asked"
    elif (report.status or "").casefold() != STATUS_COMPLETED.casefold():
        why = f"the payment is {report.status}"
    elif report.amount_minor != invoice.value_minor:
        why = f"amount {report.amount_minor} is not the invoice's {invoice.value_minor}"
    elif await repository.receipt_taken(session, receipt, invoice.id):
        why = f"receipt {receipt} belongs to another invoice"
    if why is not None:
        return CallbackOutcome.MISMATCH, f"{NOTE}: {why}"
    await state.complete(session, invoice, receipt)  # or, already COMPLETE, learns the receipt
    return CallbackOutcome.APPLIED, f"{NOTE}: confirmed {receipt}"
