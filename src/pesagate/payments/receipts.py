"""Confirming a held success by its receipt, with Daraja's Transaction Status.

A success callback held for confirmation (AWAITING_CONFIRMATION) carries an M-Pesa receipt.
Besides the STK query (by CheckoutRequestID), reconciliation asks Transaction Status about that
receipt (when an initiator is configured: `Settings.transaction_status_enabled`); M-Pesa posts
the Result to `/callbacks/stk/{token}/status`. The invoice completes only when M-Pesa says the
receipt is Completed for exactly the invoice's value, the held callback named the invoice's own
checkout, and no other invoice holds the receipt: M-Pesa's own word, as for FAILED -> COMPLETE.
Every Result is stored (with the invoice's callbacks, noted "transaction status")."""

import hashlib

import structlog

from pesagate import metrics
from pesagate.config import Settings
from pesagate.db import AsyncSession, Database
from pesagate.models import CallbackOutcome, Invoice, InvoiceState, MpesaCallback
from pesagate.mpesa.client import DarajaClient
from pesagate.mpesa.protocol import STATUS_COMPLETED
from pesagate.mpesa.reversal import InitiatorResult, parse_result, status_report
from pesagate.payments import repository, state
from pesagate.payments.callbacks import CallbackPolicy, held_success_receipt

log = structlog.get_logger("pesagate.reconcile")

NOTE = "transaction status"
RAW_MAX_CHARS = 8192
UNKNOWN_PREFIX_CHARS = 256


async def ask_about_receipt(
    db: Database, daraja: DarajaClient, settings: Settings, invoice: Invoice
) -> bool:
    """Ask Transaction Status about the held success's receipt; False if there is none."""
    async with db.transaction() as session:
        locked = await repository.lock_invoice(session, id=invoice.id)
        receipt = None if locked is None else await held_success_receipt(session, locked)
    if receipt is None:
        return False
    base = f"{settings.public_url.rstrip('/')}/callbacks/stk/{invoice.callback_token}"
    answer = await daraja.transaction_status(
        receipt=receipt,
        result_url=f"{base}/status",
        timeout_url=f"{base}/status",
        remarks=f"Confirm payment {invoice.invoice_id}",
    )
    metrics.DARAJA_CALLS.labels("transaction_status", type(answer).__name__).inc()
    log.info("receipt asked about", invoice_id=invoice.invoice_id, answer=type(answer).__name__)
    return True


async def receive_status(
    db: Database, token: str, raw: bytes, source_ip: str | None, policy: CallbackPolicy
) -> CallbackOutcome:
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
    return outcome


async def _apply(
    session: AsyncSession, invoice: Invoice, parsed: InitiatorResult
) -> tuple[CallbackOutcome, str]:
    if invoice.state == InvoiceState.COMPLETE:
        return CallbackOutcome.IGNORED, f"{NOTE}: already COMPLETE"
    if not parsed.succeeded:
        return CallbackOutcome.IGNORED, f"{NOTE}: {parsed.result_code} {parsed.result_desc}"
    report = status_report(parsed)
    held = await held_success_receipt(session, invoice)
    why = None
    if held is None or report.receipt != held:
        why = f"receipt {report.receipt} is not the held success's"
    elif (report.status or "").casefold() != STATUS_COMPLETED.casefold():
        why = f"the payment is {report.status}"
    elif report.amount_minor != invoice.value_minor:
        why = f"amount {report.amount_minor} is not the invoice's {invoice.value_minor}"
    elif await repository.receipt_taken(session, held, invoice.id):
        why = f"receipt {held} belongs to another invoice"
    if why is not None:
        return CallbackOutcome.MISMATCH, f"{NOTE}: {why}"
    await state.complete(session, invoice, held)
    return CallbackOutcome.APPLIED, f"{NOTE}: confirmed {held}"
