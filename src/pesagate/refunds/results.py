"""Results posted to a refund's URLs (`/callbacks/reversal/{token}/{kind}`): stored raw
whatever they say, then applied under the refund's lock. Duplicates (the same body for the
same refund) and Results for final refunds change nothing.

- A Reversal Result: 0 completes the refund; R000001 (already reversed) disputes it; any
  other code cancels it (M-Pesa reversed nothing).
- A QueueTimeOut notice proves nothing (the reversal may still be carried out): the refund's
  job asks Transaction Status at once.
- A Transaction Status Result about the refunded payment: "Reversed" completes the refund; a
  payment still "Completed" cancels it only once `refund_unknown_grace_s` has passed since the
  reversal was sent (M-Pesa may still be processing it), and so does M-Pesa's answer that it
  knows no payment by that receipt (R000002). Anything else is recorded only.
- M-Pesa's word that the payment was reversed after all, for a refund so CANCELLED: the money
  left, so the books follow (`state.complete_late`).
"""

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from pesagate.db import AsyncSession, Database
from pesagate.kit.clock import utc_now
from pesagate.models import Invoice, Refund, RefundStatus, ResultKind, ResultOutcome, ReversalResult
from pesagate.mpesa.protocol import STATUS_COMPLETED, STATUS_REVERSED, ReversalCode
from pesagate.mpesa.reversal import InitiatorResult, parse_result, status_report
from pesagate.refunds import repository, state
from pesagate.refunds.service import locked
from pesagate.worker.jobs import wake

log = structlog.get_logger("pesagate.refunds")

UNKNOWN_PREFIX_CHARS = 512  # what is kept of a body for no refund


@dataclass(frozen=True, slots=True)
class ResultPolicy:
    unknown_grace_s: float


async def receive_result(
    db: Database,
    token: str,
    kind: ResultKind,
    body: bytes,
    source_ip: str | None,
    policy: ResultPolicy,
    allow_refusal: Callable[[], Awaitable[bool]] | None = None,
) -> ResultOutcome | None:
    """What became of the Result; None when it spoke for no refund and the source's allowance
    of such posts was used up: then nothing is stored."""
    text = body.decode("utf-8", errors="replace")
    parsed = parse_result(body)
    row = ReversalResult(
        kind=kind,
        result_code=parsed.result_code[:32] if parsed else None,
        conversation_id=parsed.conversation_id if parsed else None,
        body_sha256=hashlib.sha256(body).hexdigest(),
        raw_body=text,
        source_ip=source_ip,
        outcome=ResultOutcome.IGNORED,
    )
    async with db.transaction() as session:
        # Not locked here: `_apply` locks the invoice, then the refund (the order every
        # writer keeps; the refund first would deadlock with the refund's job).
        refund_pk = await repository.refund_pk_by_token(session, token[:64])
        if refund_pk is None:
            if allow_refusal is not None and not await allow_refusal():
                return None
            row.outcome, row.raw_body = ResultOutcome.UNKNOWN_TOKEN, text[:UNKNOWN_PREFIX_CHARS]
        else:
            row.refund_id = refund_pk
            row.outcome = await _apply(session, refund_pk, row, parsed, policy)
        repository.add_result(session, row)
    log.info("reversal result", kind=kind.value, outcome=row.outcome.value, code=row.result_code)
    return row.outcome


async def _apply(
    session: AsyncSession,
    refund_pk: int,
    row: ReversalResult,
    parsed: InitiatorResult | None,
    policy: ResultPolicy,
) -> ResultOutcome:
    if await repository.seen_result(session, refund_pk, row.body_sha256):
        return ResultOutcome.DUPLICATE
    if parsed is None:
        return ResultOutcome.UNPARSEABLE
    refund, invoice = await locked(session, refund_pk)
    if refund.status == RefundStatus.CANCELLED and _says_reversed(row.kind, parsed, invoice):
        changed = await state.complete_late(session, refund, invoice, _receipt(row.kind, parsed))
        return ResultOutcome.APPLIED if changed else ResultOutcome.IGNORED
    if refund.status in state.FINAL:
        return ResultOutcome.IGNORED
    match row.kind:
        case ResultKind.RESULT:
            changed = await _reversal_result(session, refund, invoice, parsed)
        case ResultKind.TIMEOUT:
            await wake(session, state.refund_key(refund.id))
            changed = False
        case ResultKind.STATUS:
            changed = await _status_result(session, refund, invoice, parsed, policy)
    return ResultOutcome.APPLIED if changed else ResultOutcome.IGNORED


def _says_reversed(kind: ResultKind, result: InitiatorResult, invoice: Invoice) -> bool:
    """A Reversal Result 0, or Transaction Status reporting the refunded payment Reversed."""
    if not result.succeeded:
        return False
    if kind == ResultKind.RESULT:
        return True
    report = status_report(result)
    reversed_ = (report.status or "").casefold() == STATUS_REVERSED.casefold()
    return kind == ResultKind.STATUS and reversed_ and report.receipt == invoice.mpesa_reference


def _receipt(kind: ResultKind, result: InitiatorResult) -> str | None:
    return result.transaction_id if kind == ResultKind.RESULT else None


async def _reversal_result(
    session: AsyncSession, refund: Refund, invoice: Invoice, result: InitiatorResult
) -> bool:
    if (
        refund.conversation_id is not None
        and result.conversation_id is not None
        and result.conversation_id != refund.conversation_id
    ):
        log.warning("a result for another conversation", chargeback_id=refund.chargeback_id)
        return False
    code = result.result_code
    if result.succeeded:
        return await state.complete(session, refund, invoice, result.transaction_id, code)
    resolution = f"M-Pesa reversal failed: {code} {result.result_desc}".strip()
    if code == ReversalCode.ALREADY_REVERSED:
        return await state.dispute(session, refund, invoice, code, resolution)
    return await state.cancel(session, refund, invoice, code, resolution)


async def _status_result(
    session: AsyncSession,
    refund: Refund,
    invoice: Invoice,
    result: InitiatorResult,
    policy: ResultPolicy,
) -> bool:
    sent_at = refund.reversal_sent_at
    waited = sent_at is not None and utc_now() - sent_at >= timedelta(
        seconds=policy.unknown_grace_s
    )
    if not result.succeeded:
        log.warning(
            "transaction status failed",
            chargeback_id=refund.chargeback_id,
            code=result.result_code,
            desc=result.result_desc,
        )
        if result.result_code == ReversalCode.INVALID_ORIGINAL and waited:
            # M-Pesa knows no payment by the receipt the reversal named: it reversed nothing.
            resolution = "M-Pesa does not know the payment's receipt: nothing was reversed."
            return await state.cancel(session, refund, invoice, result.result_code, resolution)
        return False
    report = status_report(result)
    if report.receipt != invoice.mpesa_reference:
        return False  # it must speak of the refunded payment, by its receipt
    status = (report.status or "").casefold()
    if status == STATUS_REVERSED.casefold():
        return await state.complete(session, refund, invoice, None, ReversalCode.SUCCESS)
    if status == STATUS_COMPLETED.casefold() and waited:
        resolution = "M-Pesa never carried out the reversal: the payment is still Completed."
        return await state.cancel(session, refund, invoice, None, resolution)
    return False
