"""Posting to the ledger. Every function takes the caller's session: entries are written in
the same transaction as the change they record (an invoice completing, a transfer)."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.db import insert_ignore, remember_after_commit, remembered
from pesagate.kit import ids
from pesagate.kit.clock import utc_now
from pesagate.models import (
    AccountKind,
    Business,
    EntryKind,
    Invoice,
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    LineStatus,
    TransType,
    Wallet,
)
from pesagate.worker.jobs import add_job

RELEASE_JOB = "release_clearing"


class LedgerError(Exception):
    """A bug, not a user error: an unbalanced entry, a missing account."""


@dataclass(frozen=True, slots=True)
class Line:
    account: LedgerAccount
    amount_minor: int
    trans_type: TransType
    status: LineStatus
    narrative: str


def wallet_account_code(wallet_pk: int) -> str:
    return f"wallet:{wallet_pk}"


def platform_account_code(kind: AccountKind, currency: str) -> str:
    return f"platform:{kind.value.lower()}:{currency}"


async def open_wallet_account(session: AsyncSession, wallet: Wallet) -> LedgerAccount:
    account = LedgerAccount(
        code=wallet_account_code(wallet.id),
        kind=AccountKind.WALLET,
        currency=wallet.currency,
        wallet_id=wallet.id,
    )
    session.add(account)
    await session.flush()
    return account


async def wallet_account(
    session: AsyncSession, wallet_pk: int, *, lock: bool = False
) -> LedgerAccount:
    statement = select(LedgerAccount).where(LedgerAccount.wallet_id == wallet_pk)
    if lock:
        statement = statement.with_for_update()
    account = await session.scalar(statement.execution_options(populate_existing=True))
    if account is None:
        raise LedgerError(f"wallet {wallet_pk} has no ledger account")
    return account


async def platform_account(
    session: AsyncSession, kind: AccountKind, currency: str
) -> LedgerAccount:
    """The platform's account of this kind, created on first use. Remembered per database once
    committed: postings to platform accounts need only its id and kind (their balances are
    summed from postings, never stored on the row), and four statements per collection were
    spent looking them up."""
    code = platform_account_code(kind, currency)
    known: LedgerAccount | None = remembered(session, code)
    if known is not None:
        return known
    await insert_ignore(
        session,
        LedgerAccount,
        {
            "code": code,
            "kind": kind,
            "currency": currency,
            "balance_minor": 0,
            "available_minor": 0,
            "created_at": utc_now(),
            "updated_at": utc_now(),
        },
    )
    account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    assert account is not None
    # A transient copy: the session's own instance expires when its session ends.
    copy = LedgerAccount(id=account.id, code=code, kind=account.kind, currency=currency)
    remember_after_commit(session, code, copy)
    return account


async def post_entry(
    session: AsyncSession,
    *,
    key: str,
    kind: EntryKind,
    narrative: str,
    lines: list[Line],
    invoice_pk: int | None = None,
) -> tuple[LedgerEntry, list[LedgerPosting]] | None:
    """Write one balanced entry; None if an entry with this key exists (exactly once).

    Wallet accounts must already be locked by the caller (`wallet_account(lock=True)`), so
    that their running balances are computed one posting at a time.
    """
    if sum(line.amount_minor for line in lines) != 0:
        raise LedgerError(f"entry {key} does not balance")
    if await session.scalar(select(LedgerEntry.id).where(LedgerEntry.key == key)) is not None:
        return None
    entry = LedgerEntry(key=key, kind=kind, invoice_id=invoice_pk, narrative=narrative[:255])
    session.add(entry)
    await session.flush()
    postings = [_posting(entry, line) for line in lines if line.amount_minor != 0]
    session.add_all(postings)
    await session.flush()
    return entry, postings


def _posting(entry: LedgerEntry, line: Line) -> LedgerPosting:
    account = line.account
    running = None
    if account.kind == AccountKind.WALLET:
        account.balance_minor += line.amount_minor
        if line.status == LineStatus.AVAILABLE:
            account.available_minor += line.amount_minor
        running = account.balance_minor
    return LedgerPosting(
        transaction_id=ids.random_code(12),
        entry_id=entry.id,
        account_id=account.id,
        amount_minor=line.amount_minor,
        trans_type=line.trans_type,
        status=line.status,
        running_balance_minor=running,
        narrative=line.narrative[:255],
        available_at=utc_now() if line.status == LineStatus.AVAILABLE else None,
    )


def collection_key(invoice_pk: int) -> str:
    return f"invoice:{invoice_pk}:collection"


async def post_collection(session: AsyncSession, invoice: Invoice) -> bool:
    """Credit a COMPLETE invoice to its wallet, net of fees: exactly once per invoice."""
    business = await session.get(Business, invoice.business_id)
    assert business is not None
    clearing = business.clearing_delay_s > 0
    status = LineStatus.CLEARING if clearing else LineStatus.AVAILABLE
    wallet = await wallet_account(session, invoice.wallet_id, lock=True)
    mpesa = await platform_account(session, AccountKind.MPESA_CLEARING, invoice.currency)
    fees = await platform_account(session, AccountKind.FEE_INCOME, invoice.currency)
    reference = invoice.mpesa_reference or invoice.invoice_id
    lines = [
        Line(mpesa, -invoice.value_minor, TransType.SALE, LineStatus.AVAILABLE, reference),
        Line(wallet, invoice.value_minor, TransType.SALE, status, f"Payment {reference}"),
        Line(wallet, -invoice.charges_minor, TransType.CHARGE, status, f"Charges {reference}"),
        Line(fees, invoice.charges_minor, TransType.CHARGE, LineStatus.AVAILABLE, reference),
    ]
    posted = await post_entry(
        session,
        key=collection_key(invoice.id),
        kind=EntryKind.COLLECTION,
        narrative=f"M-Pesa collection {invoice.invoice_id}",
        lines=lines,
        invoice_pk=invoice.id,
    )
    if posted is None:
        return False
    invoice.clearing_status = status.value
    if clearing:
        at = utc_now() + timedelta(seconds=business.clearing_delay_s)
        add_job(session, RELEASE_JOB, f"release:{posted[0].id}", at, {"entry_id": posted[0].id})
    return True


async def release_clearing(session: AsyncSession, entry_pk: int) -> int:
    """Make an entry's CLEARING lines AVAILABLE. Idempotent; returns the lines released."""
    entry = await session.get(LedgerEntry, entry_pk)
    if entry is None:
        return 0
    account_ids = select(LedgerPosting.account_id).where(LedgerPosting.entry_id == entry_pk)
    accounts = {
        account.id: account
        for account in await session.scalars(
            select(LedgerAccount)
            .where(LedgerAccount.id.in_(account_ids))
            .order_by(LedgerAccount.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    clearing_lines = (
        await session.scalars(
            select(LedgerPosting).where(
                LedgerPosting.entry_id == entry_pk, LedgerPosting.status == LineStatus.CLEARING
            )
        )
    ).all()
    now = utc_now()
    for line in clearing_lines:
        accounts[line.account_id].available_minor += line.amount_minor
        line.status = LineStatus.AVAILABLE
        line.available_at = now
    if entry.invoice_id is not None and clearing_lines:
        await session.execute(
            update(Invoice)
            .where(Invoice.id == entry.invoice_id)
            .values(clearing_status=LineStatus.AVAILABLE.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(clearing_lines)
