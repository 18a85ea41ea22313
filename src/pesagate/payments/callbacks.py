"""Daraja result callbacks: store raw, deduplicate, check, and apply under the invoice's lock.

Callbacks carry no signature. The path token (192 random bits, one per invoice) says which
invoice a callback may speak for; a success must also name the invoice's CheckoutRequestID
and match its amount and phone, or it is recorded and left for reconciliation.

A success is credited on the callback's word alone only when everything in it was checked.
M-Pesa confirms it first (an STK query by reconciliation; meanwhile the callback is
AWAITING_CONFIRMATION and a PENDING invoice shows PROCESSING) when:
- the policy asks for it (`PESAGATE_CONFIRM_CALLBACKS`, on by default in live mode);
- the invoice had FAILED (only M-Pesa's own answer may turn FAILED into COMPLETE);
- the invoice did not know its CheckoutRequestID yet (the push response was lost);
- the phone number is masked or absent, so it could not be compared.

Every body is stored whatever happens to it: if applying it fails (at any point up to the
commit), the transaction rolls back and a second one stores the body with outcome ERROR and
the error, and asks reconciliation to query now, rather than a lost body and a 500. A body that
speaks for no invoice, or comes from a forbidden source, keeps only a digest, its size and a
short prefix.
"""

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

import orjson
import structlog

from pesagate.db import AnySession, AsyncSession, Database
from pesagate.kit.clock import utc_now
from pesagate.kit.money import AmountError, parse_amount
from pesagate.models import CallbackOutcome, Invoice, InvoiceState
from pesagate.mpesa.protocol import ResultCode, result_description
from pesagate.payments import repository, state
from pesagate.payments.locked import LockedInvoice
from pesagate.payments.state import RECONCILE_JOB
from pesagate.worker.jobs import schedule

log = structlog.get_logger("pesagate.callbacks")

RAW_BODY_MAX = 64 * 1024
REFUSED_PREFIX_CHARS = 256  # what is kept of a body that speaks for no invoice
# A success is held until M-Pesa confirms it; its receipt until Transaction Status does. Only
# the latest few candidates are asked about (each costs a Daraja call; a flood of forged bodies
# must not turn into a flood of queries).
HELD_BODIES_READ = 20
HELD_RECEIPTS_ASKED = 3
SUCCESS = str(ResultCode.SUCCESS)
# Bounded by form before any arithmetic: ASCII digits only (str.isdigit accepts "²").
_RESULT_CODE = re.compile(r"[0-9]{1,9}")


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
    """Tolerant of form (ResultCode as number or string; metadata items in any order, by
    Name), strict on content: a ResultCode that is not a plain number is not a callback."""
    try:
        body = orjson.loads(raw)
        callback = body["Body"]["stkCallback"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(callback, dict):
        return None
    code = _result_code(callback.get("ResultCode"))
    if code is None:
        return None
    items = _metadata(callback.get("CallbackMetadata"))
    return ParsedCallback(
        merchant_request_id=_text(callback.get("MerchantRequestID")),
        checkout_request_id=_text(callback.get("CheckoutRequestID")),
        result_code=code,
        result_desc=_text(callback.get("ResultDesc"), 300) or result_description(int(code)),
        amount=_amount(items.get("Amount")),
        receipt=_text(items.get("MpesaReceiptNumber"), 32),
        phone=_text(items.get("PhoneNumber")),
    )


def _result_code(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    code = str(value).strip()
    return code if _RESULT_CODE.fullmatch(code) else None


def _metadata(metadata: Any) -> dict[str, Any]:
    items = metadata.get("Item") if isinstance(metadata, dict) else None
    if not isinstance(items, list):
        return {}
    return {
        item["Name"]: item.get("Value")
        for item in items
        if isinstance(item, dict) and isinstance(item.get("Name"), str)
    }


def _text(value: Any, max_chars: int = 64) -> str | None:
    """A scalar as text, cut to what its column holds (ids 64, receipts 32)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value).replace("\x00", "").strip()[:max_chars] or None


def _amount(value: Any) -> Decimal | None:
    """Shillings as Daraja sends them (1500, 1500.0, "1500.00"); anything else is None."""
    try:
        return parse_amount(value)
    except AmountError:
        return None


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """SPEC section 5's callback hardening."""

    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()  # empty: any source
    confirm_successes: bool = False  # confirm every success with an STK query before crediting
    # Transaction Status can be asked: a held receipt becomes the invoice's only on its word.
    confirm_receipts: bool = False

    def source_allowed(self, source_ip: str | None) -> bool:
        if not self.allowed_networks:
            return True
        try:
            address = ip_address(source_ip or "")
        except ValueError:
            return False
        return any(address in network for network in self.allowed_networks)


@dataclass(frozen=True, slots=True)
class Received:
    """What became of a callback; `stored` is False when it was refused without a trace."""

    outcome: CallbackOutcome
    stored: bool = True
    invoice_id: str | None = None  # the invoice it spoke for, if any


# Spends one of a source's refused posts (rate limited per source); False: over the limit.
RefusalAllowance = Callable[[], Awaitable[bool]]


async def receive_callback(
    db: Database,
    token: str,
    raw: bytes,
    source_ip: str | None,
    policy: CallbackPolicy = CallbackPolicy(),
    allow_refusal: RefusalAllowance | None = None,
) -> Received:
    body = _Body(raw, hashlib.sha256(raw).hexdigest(), parse_callback(raw), source_ip)
    try:
        received = await _receive(db, token, body, policy, allow_refusal)
    except Exception as error:
        # Applying it failed (even at commit, where deferred ledger checks run): the whole
        # transaction rolled back. Keep the body and its error, and let M-Pesa settle it.
        log.exception("callback could not be applied", token=token[:8])
        received = await _store_error(db, token, body, error)
    log.info(
        "callback received",
        invoice_id=received.invoice_id,
        result_code=body.parsed.result_code if body.parsed else None,
        outcome=received.outcome.value,
        stored=received.stored,
    )
    return received


@dataclass(frozen=True, slots=True)
class _Body:
    raw: bytes
    sha256: str
    parsed: ParsedCallback | None
    source_ip: str | None

    def row(
        self, invoice_pk: int | None, token: str, outcome: CallbackOutcome, note: str | None
    ) -> dict[str, Any]:
        """The `mpesa_callbacks` row that keeps this body."""
        evidence = invoice_pk is not None and outcome != CallbackOutcome.FORBIDDEN_SOURCE
        return {
            "invoice_id": invoice_pk,
            "token": token[:64],
            "checkout_request_id": self.parsed.checkout_request_id if self.parsed else None,
            "result_code": self.parsed.result_code if self.parsed else None,
            "body_sha256": self.sha256,
            "raw_body": _storable(self.raw, RAW_BODY_MAX if evidence else REFUSED_PREFIX_CHARS),
            "body_size": len(self.raw),
            "source_ip": self.source_ip,
            "outcome": outcome,
            "note": note,
            "received_at": utc_now(),
        }


async def _receive(
    db: Database,
    token: str,
    body: _Body,
    policy: CallbackPolicy,
    allow_refusal: RefusalAllowance | None,
) -> Received:
    async with db.transaction() as session:
        invoice = await repository.lock_invoice_by_token(session, token)
        invoice_pk, invoice_id = (invoice.id, invoice.invoice_id) if invoice else (None, None)
        if not policy.source_allowed(body.source_ip):
            outcome, note = (
                CallbackOutcome.FORBIDDEN_SOURCE,
                f"source {body.source_ip} not allowed",
            )
        elif invoice is None:
            outcome, note = CallbackOutcome.UNKNOWN_TOKEN, None
        else:
            outcome, note = await _apply(session, invoice, body.parsed, body.sha256, policy)
            await repository.save_invoice(session, invoice)
        refused = invoice is None or outcome == CallbackOutcome.FORBIDDEN_SOURCE
        if refused and allow_refusal is not None and not await allow_refusal():
            return Received(outcome, stored=False)
        await repository.add_callback(session, body.row(invoice_pk, token, outcome, note))
    return Received(outcome, invoice_id=invoice_id)


async def _store_error(db: Database, token: str, body: _Body, error: Exception) -> Received:
    async with db.transaction() as session:
        invoice = await repository.lock_invoice(session, callback_token=token)
        note = f"{type(error).__name__}: {error}"[:300]
        row = body.row(invoice.id if invoice else None, token, CallbackOutcome.ERROR, note)
        await repository.add_callback(session, row)
        if invoice is not None:
            await _query_now(session, invoice.id)
    return Received(CallbackOutcome.ERROR, invoice_id=invoice.invoice_id if invoice else None)


def _storable(raw: bytes, max_chars: int) -> str:
    # PostgreSQL text cannot hold NUL; keep everything else as it came.
    return raw[:max_chars].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


async def _apply(
    session: AsyncSession,
    invoice: LockedInvoice,
    parsed: ParsedCallback | None,
    body_sha: str,
    policy: CallbackPolicy,
) -> tuple[CallbackOutcome, str | None]:
    if parsed is None:
        return CallbackOutcome.UNPARSEABLE, None
    if await repository.seen_callback(session, invoice.id, body_sha):
        return CallbackOutcome.DUPLICATE, None
    if mismatch := _mismatch(invoice, parsed):
        log.warning(
            "callback does not match its invoice", invoice_id=invoice.invoice_id, note=mismatch
        )
        return CallbackOutcome.MISMATCH, mismatch
    learnt_checkout = invoice.checkout_request_id is None
    # The push response may have been lost or not stored yet: the callback names the checkout.
    invoice.checkout_request_id = invoice.checkout_request_id or parsed.checkout_request_id
    invoice.merchant_request_id = invoice.merchant_request_id or parsed.merchant_request_id
    if parsed.result_code == SUCCESS:
        return await _success(session, invoice, parsed, policy, learnt_checkout)
    if parsed.result_code == str(ResultCode.STILL_PROCESSING):
        return CallbackOutcome.IGNORED, None  # not a result
    changed = await state.fail(session, invoice, parsed.result_code, parsed.result_desc)
    return (CallbackOutcome.APPLIED if changed else CallbackOutcome.IGNORED), None


async def _success(
    session: AsyncSession,
    invoice: LockedInvoice,
    parsed: ParsedCallback,
    policy: CallbackPolicy,
    learnt_checkout: bool,
) -> tuple[CallbackOutcome, str | None]:
    why = _confirmation_needed(invoice, parsed, policy, learnt_checkout)
    paid_without_receipt = invoice.state == InvoiceState.COMPLETE and not invoice.mpesa_reference
    if why and paid_without_receipt and policy.confirm_receipts:
        # Paid (M-Pesa's query said so) without a receipt: this one's is taken only once M-Pesa
        # confirms it (reconciliation asks Transaction Status, payments/receipts.py).
        await _query_now(session, invoice.id)
        return CallbackOutcome.AWAITING_CONFIRMATION, f"{why}; the receipt waits for M-Pesa"
    if why and invoice.state != InvoiceState.COMPLETE:
        await state.mark_processing(session, invoice)  # PENDING shows PROCESSING
        await _query_now(session, invoice.id)
        return CallbackOutcome.AWAITING_CONFIRMATION, why
    changed = await state.complete(session, invoice, parsed.receipt)
    return (CallbackOutcome.APPLIED if changed else CallbackOutcome.IGNORED), None


def _confirmation_needed(
    invoice: LockedInvoice, parsed: ParsedCallback, policy: CallbackPolicy, learnt_checkout: bool
) -> str | None:
    """Why M-Pesa must confirm this success before it is credited, or None."""
    if invoice.state == InvoiceState.FAILED:
        return "the invoice had failed: only M-Pesa's answer may complete it"
    if policy.confirm_successes:
        return "every success is confirmed"
    if learnt_checkout:
        return "the invoice did not know its CheckoutRequestID yet"
    if not _plain_phone(parsed.phone):
        return "the phone number is masked or absent"
    return None


def _plain_phone(phone: str | None) -> bool:
    return phone is not None and phone.isascii() and phone.isdigit()


async def _query_now(session: AsyncSession, invoice_pk: int) -> None:
    """Ask reconciliation to query M-Pesa now; only its answer settles the invoice."""
    await schedule(
        session,
        RECONCILE_JOB,
        state.reconcile_job_key(invoice_pk),
        utc_now(),
        {"invoice_pk": invoice_pk},
    )


async def held_success_receipts(session: AnySession, invoice: Invoice) -> list[str]:
    """The distinct receipts of the success callbacks held for M-Pesa's confirmation that named
    the invoice's checkout, newest first. An STK query confirms that the customer paid, never
    which of these receipts is M-Pesa's: any of them may be made up (see `payments/receipts.py`)."""
    receipts: list[str] = []
    for raw in await repository.held_success_bodies(session, invoice, HELD_BODIES_READ):
        parsed = parse_callback(raw.encode())
        if parsed and parsed.receipt and parsed.receipt not in receipts:
            receipts.append(parsed.receipt)
    return receipts[:HELD_RECEIPTS_ASKED]


def _mismatch(invoice: LockedInvoice, parsed: ParsedCallback) -> str | None:
    """Why this callback cannot speak for this invoice, or None."""
    known, claimed = invoice.checkout_request_id, parsed.checkout_request_id
    if known and claimed and known != claimed:
        return f"CheckoutRequestID {claimed} is not the invoice's"
    if parsed.result_code != SUCCESS:
        return None
    if not claimed:
        return "a success must name its CheckoutRequestID"
    if parsed.amount is None or parsed.amount * 100 != invoice.value_minor:
        return f"amount {parsed.amount} is not the invoice's {invoice.value_minor / 100:.2f}"
    if _plain_phone(parsed.phone) and parsed.phone != invoice.account:
        return "phone number is not the invoice's"
    receipt, held = parsed.receipt, invoice.mpesa_reference
    if invoice.state == InvoiceState.COMPLETE and receipt and held not in (None, receipt):
        return f"receipt {receipt} differs from {held}"
    return None
