"""`pesagate ledger verify`: recompute the books from postings and report every disagreement.

Checks: every entry balances and has postings; every wallet account's balance and available
balance equal the sums of its postings, and its running balances add up line by line; every
COMPLETE invoice was credited exactly once with its value, charges and net to its wallet;
nothing else was credited.
"""

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.kit.money import format_minor
from pesagate.ledger.service import collection_key
from pesagate.models import (
    AccountKind,
    EntryKind,
    Invoice,
    InvoiceState,
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    LineStatus,
    TransType,
)


async def verify(session: AsyncSession) -> list[str]:
    findings: list[str] = []
    findings += await _unbalanced_entries(session)
    findings += await _wallet_balances(session)
    findings += await _running_balances(session)
    findings += await _collections(session)
    return findings


async def _unbalanced_entries(session: AsyncSession) -> list[str]:
    sums = (
        select(
            LedgerEntry.key,
            func.coalesce(func.sum(LedgerPosting.amount_minor), 0),
            func.count(LedgerPosting.id),
        )
        .outerjoin(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .group_by(LedgerEntry.id, LedgerEntry.key)
    )
    findings = []
    for key, total, count in await session.execute(sums):
        if count == 0:
            findings.append(f"entry {key} has no postings")
        elif total != 0:
            findings.append(
                f"entry {key} does not balance: its postings sum to {format_minor(total)}"
            )
    return findings


async def _wallet_balances(session: AsyncSession) -> list[str]:
    available = case(
        (LedgerPosting.status == LineStatus.AVAILABLE, LedgerPosting.amount_minor), else_=0
    )
    totals = (
        select(
            LedgerAccount.code,
            LedgerAccount.balance_minor,
            LedgerAccount.available_minor,
            func.coalesce(func.sum(LedgerPosting.amount_minor), 0),
            func.coalesce(func.sum(available), 0),
        )
        .outerjoin(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == AccountKind.WALLET)
        .group_by(LedgerAccount.id)
    )
    findings = []
    for code, balance, available_balance, posted, posted_available in await session.execute(totals):
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
    cumulative = (
        func.sum(LedgerPosting.amount_minor)
        .over(partition_by=LedgerPosting.account_id, order_by=LedgerPosting.id)
        .label("cumulative")
    )
    lines = (
        select(LedgerPosting.transaction_id, LedgerPosting.running_balance_minor, cumulative)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.kind == AccountKind.WALLET)
        .subquery()
    )
    wrong = select(lines).where(
        (lines.c.running_balance_minor.is_(None))
        | (lines.c.running_balance_minor != lines.c.cumulative)
    )
    return [
        f"line {transaction_id}: running balance {running} but the lines before it sum to {total}"
        for transaction_id, running, total in await session.execute(wrong)
    ]


async def _collections(session: AsyncSession) -> list[str]:
    wallet_lines = (
        select(
            LedgerEntry.invoice_id,
            func.count(func.distinct(LedgerEntry.id)).label("entries"),
            func.sum(
                case(
                    (LedgerPosting.trans_type == TransType.SALE, LedgerPosting.amount_minor),
                    else_=0,
                )
            ).label("sale"),
            func.sum(
                case(
                    (LedgerPosting.trans_type == TransType.CHARGE, LedgerPosting.amount_minor),
                    else_=0,
                )
            ).label("charge"),
            func.min(LedgerAccount.wallet_id).label("wallet_pk"),
        )
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerEntry.kind == EntryKind.COLLECTION, LedgerAccount.kind == AccountKind.WALLET)
        .group_by(LedgerEntry.invoice_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Invoice.invoice_id,
            Invoice.id,
            Invoice.state,
            Invoice.value_minor,
            Invoice.charges_minor,
            Invoice.wallet_id,
            wallet_lines.c.entries,
            wallet_lines.c.sale,
            wallet_lines.c.charge,
            wallet_lines.c.wallet_pk,
        )
        .outerjoin(wallet_lines, wallet_lines.c.invoice_id == Invoice.id)
        .where((Invoice.state == InvoiceState.COMPLETE) | (wallet_lines.c.entries.is_not(None)))
    )
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
    ) in rows:
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
