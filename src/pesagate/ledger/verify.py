"""`pesagate ledger verify`: recompute the books from postings and report every disagreement.

Checks: every entry balances and has postings; every wallet account's balance and available
balance equal the sums of its postings, and its running balances add up line by line; every
COMPLETE invoice was credited exactly once with its value, charges and net to its wallet;
nothing else was credited. Holds and refunds: every wallet's held amount is the sum of its HELD
holds and never more than its available balance; a refund on its way (PENDING, PROCESSING,
DISPUTED) holds exactly its wallet debit, a CANCELLED one released it, a COMPLETED one captured
it into exactly one REFUND entry that took exactly its wallet debit; no REFUND entry without
its refund; no invoice refunded beyond its value, nor otherwise than its refunds say.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.kit.money import format_minor
from pesagate.ledger import repository
from pesagate.ledger.postings import collection_key
from pesagate.models import HoldStatus, InvoiceState, RefundStatus

# What a refund's hold must be, by the refund's status.
HOLD_OF = {
    RefundStatus.PENDING: HoldStatus.HELD,
    RefundStatus.PROCESSING: HoldStatus.HELD,
    RefundStatus.DISPUTED: HoldStatus.HELD,
    RefundStatus.CANCELLED: HoldStatus.RELEASED,
    RefundStatus.COMPLETED: HoldStatus.CAPTURED,
}


async def verify(session: AsyncSession) -> list[str]:
    findings: list[str] = []
    findings += await _unbalanced_entries(session)
    findings += await _wallet_balances(session)
    findings += await _running_balances(session)
    findings += await _collections(session)
    findings += await _holds(session)
    findings += await _refunds(session)
    findings += await _refunded_invoices(session)
    return findings


async def _holds(session: AsyncSession) -> list[str]:
    findings = []
    for code, held, held_holds, available in await repository.held_sums(session):
        if held != held_holds:
            holds = format_minor(held_holds)
            findings.append(f"{code}: held {format_minor(held)} but HELD holds sum to {holds}")
        if held > available:
            findings.append(
                f"{code}: held {format_minor(held)} exceeds available {format_minor(available)}"
            )
    return findings


async def _refunds(session: AsyncSession) -> list[str]:
    findings = []
    keys = set(await repository.refund_entry_keys(session))
    for row in await repository.refunds_with_books(session):
        chargeback, pk, status, debit, hold_status, hold_amount, entries, net = row
        keys.discard(f"refund:{pk}")
        if hold_status != HOLD_OF[status] or hold_amount != debit:
            findings.append(
                f"refund {chargeback} is {status} but its hold is {hold_status}"
                f" {format_minor(hold_amount or 0)} (wallet debit {format_minor(debit)})"
            )
        posted = entries or 0
        if status == RefundStatus.COMPLETED and (posted != 1 or net != -debit):
            findings.append(
                f"refund {chargeback} is COMPLETED with {posted} REFUND entries taking"
                f" {format_minor(-(net or 0))} from the wallet; expected one taking"
                f" {format_minor(debit)}"
            )
        elif status != RefundStatus.COMPLETED and posted:
            findings.append(f"refund {chargeback} is {status} but has a REFUND entry")
    findings += [f"REFUND entry {key} belongs to no refund" for key in sorted(keys)]
    return findings


async def _refunded_invoices(session: AsyncSession) -> list[str]:
    findings = []
    for invoice_id, value, refunded, refunds in await repository.refunded_by_invoice(session):
        if refunded != refunds:
            findings.append(
                f"invoice {invoice_id} shows {format_minor(refunded)} refunded, its refunds"
                f" {format_minor(refunds)}"
            )
        if refunded > value:
            findings.append(f"invoice {invoice_id} is refunded beyond its value")
    return findings


async def _unbalanced_entries(session: AsyncSession) -> list[str]:
    findings = []
    for key, total, count in await repository.entry_sums(session):
        if count == 0:
            findings.append(f"entry {key} has no postings")
        elif total != 0:
            findings.append(
                f"entry {key} does not balance: its postings sum to {format_minor(total)}"
            )
    return findings


async def _wallet_balances(session: AsyncSession) -> list[str]:
    findings = []
    rows = await repository.wallet_account_sums(session)
    for code, balance, available_balance, posted, posted_available in rows:
        if balance != posted:
            findings.append(
                f"{code}: balance {format_minor(balance)}, postings sum to {format_minor(posted)}"
            )
        if available_balance != posted_available:
            findings.append(
                f"{code}: available {format_minor(available_balance)} but AVAILABLE postings "
                f"sum to {format_minor(posted_available)}"
            )
        if available_balance < 0:
            findings.append(
                f"{code}: available balance is negative ({format_minor(available_balance)})"
            )
    return findings


async def _running_balances(session: AsyncSession) -> list[str]:
    return [
        f"line {transaction_id}: running balance {running} but the lines before it sum to {total}"
        for transaction_id, running, total in await repository.wrong_running_balances(session)
    ]


async def _collections(session: AsyncSession) -> list[str]:
    findings = []
    for (
        invoice_id,
        pk,
        state,
        value,
        charges,
        wallet_pk,
        entries,
        sale,
        charge,
        credited_pk,
    ) in await repository.collections_by_invoice(session):
        if state != InvoiceState.COMPLETE:
            findings.append(f"invoice {invoice_id} is {state} but was credited")
        elif entries is None:
            findings.append(
                f"invoice {invoice_id} is COMPLETE but was never credited ({collection_key(pk)})"
            )
        elif entries != 1:
            findings.append(f"invoice {invoice_id} was credited {entries} times")
        elif sale != value or charge != -charges or credited_pk != wallet_pk:
            findings.append(
                f"invoice {invoice_id} credited SALE {format_minor(sale)}"
                f" CHARGE {format_minor(charge)} to wallet {credited_pk}; expected"
                f" {format_minor(value)}, {format_minor(-charges)} to wallet {wallet_pk}"
            )
    return findings
