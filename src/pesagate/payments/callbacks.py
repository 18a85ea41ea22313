"""Daraja result callbacks: store raw, deduplicate, check, and apply under the invoice's lock.

Callbacks carry no signature. The path token (192 random bits, one per invoice) says which
invoice a callback may speak for; a success must also match the invoice's amount and phone,
or it is recorded and left for reconciliation to settle with an STK query.
"""

import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

import orjson
import structlog
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import CallbackOutcome, Invoice, InvoiceState, MpesaCallback
from pesagate.mpesa.protocol import ResultCode, result_description
from pesagate.payments import state
from pesagate.payments.state import RECONCILE_JOB
from pesagate.worker.jobs import schedule

log = structlog.get_logger("pesagate.callbacks")

RAW_BODY_MAX = 64 * 1024


@dataclass(frozen=True, slots=True)
class ParsedCallback:
    merchant_request_id: str | None
    checkout_request_id: str | None
    result_code: str
    result_desc: str
    amount: Decimal | None
    receipt: str | None
    phone: str | None


def parse_callback(raw: bytes) -> ParsedCallback | None:
    """Tolerant: ResultCode as number or string; metadata items in any order, by Name."""
    try:
        body = orjson.loads(raw)
        callback = body["Body"]["stkCallback"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(callback, dict) or callback.get("ResultCode") is None:
        return None
    items = _metadata(callback.get("CallbackMetadata"))
    code = str(callback["ResultCode"]).strip()
    return ParsedCallback(
        merchant_request_id=_text(callback.get("MerchantRequestID")),
        checkout_request_id=_text(callback.get("CheckoutRequestID")),
        result_code=code,
        result_desc=_text(callback.get("ResultDesc")) or _describe(code),
        amount=_decimal(items.get("Amount")),
        receipt=_text(items.get("MpesaReceiptNumber")),
        phone=_text(items.get("PhoneNumber")),
    )


def _metadata(metadata: Any) -> dict[str, Any]:
    items = metadata.get("Item") if isinstance(metadata, dict) else None
    if not isinstance(items, list):
        return {}
    return {
        item["Name"]: item.get("Value")
        for item in items
        if isinstance(item, dict) and isinstance(item.get("Name"), str)
    }


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value).replace("\x00", "").strip() or None


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _describe(code: str) -> str:
    return result_description(int(code)) if code.isdigit() else "The transaction failed."


@dataclass(frozen=True, slots=True)
class Hardening:
    """SPEC section 5's optional callback hardening."""

    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()  # empty: any source
    confirm_successes: bool = False  # confirm a success with an STK query before crediting

    def source_allowed(self, source_ip: str | None) -> bool:
        if not self.allowed_networks:
            return True
        try:
            address = ip_address(source_ip or "")
        except ValueError:
            return False
        return any(address in network for network in self.allowed_networks)


async def receive_callback(
    db: Database,
    token: str,
    raw: bytes,
    source_ip: str | None,
    hardening: Hardening = Hardening(),
) -> CallbackOutcome:
    parsed = parse_callback(raw)
    body_sha = hashlib.sha256(raw).hexdigest()
    async with db.transaction() as session:
        invoice = await state.lock_invoice(session, callback_token=token)
        note: str | None
        if not hardening.source_allowed(source_ip):
            outcome, note = CallbackOutcome.FORBIDDEN_SOURCE, f"source {source_ip} not allowed"
        else:
            outcome, note = await _apply(session, invoice, parsed, body_sha, hardening)
        session.add(
            MpesaCallback(
                invoice_id=invoice.id if invoice else None,
                token=token[:64],
                checkout_request_id=parsed.checkout_request_id if parsed else None,
                result_code=parsed.result_code[:32] if parsed else None,
                body_sha256=body_sha,
                # PostgreSQL text cannot hold NUL; keep everything else as it came.
                raw_body=raw[:RAW_BODY_MAX]
                .decode("utf-8", errors="replace")
                .replace("\x00", "\ufffd"),
                source_ip=source_ip,
                outcome=outcome,
                note=note,
            )
        )
    log.info(
        "callback received",
        invoice_id=invoice.invoice_id if invoice else None,
        result_code=parsed.result_code if parsed else None,
        outcome=outcome.value,
        note=note,
    )
    return outcome


async def _apply(
    session: AsyncSession,
    invoice: Invoice | None,
    parsed: ParsedCallback | None,
    body_sha: str,
    hardening: Hardening,
) -> tuple[CallbackOutcome, str | None]:
    if invoice is None:
        return CallbackOutcome.UNKNOWN_TOKEN, None
    if parsed is None:
        return CallbackOutcome.UNPARSEABLE, None
    if await _seen_before(session, invoice.id, body_sha):
        return CallbackOutcome.DUPLICATE, None
    if mismatch := _mismatch(invoice, parsed):
        log.warning(
            "callback does not match its invoice", invoice_id=invoice.invoice_id, note=mismatch
        )
        return CallbackOutcome.MISMATCH, mismatch
    # The push response may have been lost or not stored yet: the callback names the checkout.
    invoice.checkout_request_id = invoice.checkout_request_id or parsed.checkout_request_id
    invoice.merchant_request_id = invoice.merchant_request_id or parsed.merchant_request_id
    if parsed.result_code == str(ResultCode.SUCCESS):
        if hardening.confirm_successes and invoice.state != InvoiceState.COMPLETE:
            await confirm_by_query(session, invoice)
            return CallbackOutcome.AWAITING_CONFIRMATION, None
        changed = await state.complete(session, invoice, parsed.receipt)
    elif parsed.result_code == str(ResultCode.STILL_PROCESSING):
        changed = False  # not a result
    else:
        changed = await state.fail(session, invoice, parsed.result_code, parsed.result_desc)
    return (CallbackOutcome.APPLIED if changed else CallbackOutcome.IGNORED), None


async def confirm_by_query(session: AsyncSession, invoice: Invoice) -> None:
    """Ask reconciliation to query now; it completes the invoice only if M-Pesa agrees."""
    await schedule(
        session,
        RECONCILE_JOB,
        state.reconcile_job_key(invoice.id),
        utc_now(),
        {"invoice_pk": invoice.id},
    )


async def confirmed_receipt(session: AsyncSession, invoice_pk: int) -> str | None:
    """The receipt of a success callback that waited for confirmation, if any."""
    raw = await session.scalar(
        select(MpesaCallback.raw_body)
        .where(
            MpesaCallback.invoice_id == invoice_pk,
            MpesaCallback.outcome == CallbackOutcome.AWAITING_CONFIRMATION,
        )
        .order_by(MpesaCallback.id.desc())
        .limit(1)
    )
    parsed = parse_callback(raw.encode()) if raw else None
    return parsed.receipt if parsed else None


async def _seen_before(session: AsyncSession, invoice_pk: int, body_sha: str) -> bool:
    query = select(
        exists().where(
            MpesaCallback.invoice_id == invoice_pk, MpesaCallback.body_sha256 == body_sha
        )
    )
    return bool(await session.scalar(query))


def _mismatch(invoice: Invoice, parsed: ParsedCallback) -> str | None:
    """Why this callback cannot speak for this invoice, or None."""
    known, claimed = invoice.checkout_request_id, parsed.checkout_request_id
    if known and claimed and known != claimed:
        return f"CheckoutRequestID {claimed} is not the invoice's"
    if parsed.result_code != str(ResultCode.SUCCESS):
        return None
    if parsed.amount is None or parsed.amount * 100 != invoice.value_minor:
        return f"amount {parsed.amount} is not the invoice's {invoice.value_minor / 100:.2f}"
    phone = parsed.phone or ""
    if phone.isdigit() and phone != invoice.account:  # masked or absent numbers are not compared
        return "phone number is not the invoice's"
    if (
        invoice.state == InvoiceState.COMPLETE
        and parsed.receipt
        and invoice.mpesa_reference
        not in (
            None,
            parsed.receipt,
        )
    ):
        return f"receipt {parsed.receipt} differs from {invoice.mpesa_reference}"
    return None
