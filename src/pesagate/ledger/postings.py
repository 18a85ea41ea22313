"""Posting to the ledger. Every function takes the caller's session: entries are written in
the same transaction as the change they record (an invoice completing, a transfer)."""

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from pesagate.db import insert_ignore, remember_after_commit, remembered
from pesagate.kit import ids
from pesagate.kit.clock import utc_now
from pesagate.ledger import repository
from pesagate.models import (
    AccountKind,
    EntryKind,
    LedgerAccount,
    LedgerEntry,
    LineStatus,
    TransType,
    Wallet,
)
from pesagate.worker.jobs import add_job

RELEASE_JOB = "release_clearing"
WALLET = AccountKind.WALLET


class LedgerError(Exception):
    """A bug, not a user error: an unbalanced entry, a missing account."""


@dataclass(frozen=True, slots=True)
class AccountRef:
    """An account named by id and kind alone: enough to post to it (see `post_entry`)."""

    id: int
    kind: AccountKind


@dataclass(frozen=True, slots=True)
class Line:
    account: LedgerAccount | AccountRef
    amount_minor: int
    trans_type: TransType
    status: LineStatus
    narrative: str


@dataclass(frozen=True, slots=True)
class NewPosting:
    """A posting as written: its row's columns but the id (no ORM instance is built: that was
    ~5% of a success callback's instructions)."""

    transaction_id: str
    entry_id: int
    account_id: int
    amount_minor: int
    trans_type: TransType
    status: LineStatus
    running_balance_minor: int | None
    narrative: str
    available_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def row(self) -> dict[str, Any]:
        """The `ledger_postings` row's values."""
        return {column: getattr(self, column) for column in _POSTING_COLUMNS}


_POSTING_COLUMNS = tuple(field.name for field in fields(NewPosting))


class Posted(NamedTuple):
    """A written entry's id and its lines, as written."""

    entry_id: int
    lines: list[NewPosting]


@dataclass(frozen=True, slots=True)
class Released:
    """What a clearing release made AVAILABLE: its lines, and the invoice they collected."""

    lines: int
    invoice_pk: int | None


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
    account = await repository.wallet_account(session, wallet_pk, lock=lock)
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
    account = await repository.account_by_code(session, code)
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
) -> Posted | None:
    """Write one balanced entry; None if an entry with this key exists (exactly once: the
    key is unique, and a second writer of it inserts nothing).

    Wallet balances change by one `UPDATE … SET balance = balance + delta … RETURNING`
    per account, which also locks the row; running balances are counted back from what it
    returns. A wallet account passed as a session instance gets the new balances as its
    committed state (its holder renders them), never as a change to flush.
    """
    if sum(line.amount_minor for line in lines) != 0:
        raise LedgerError(f"entry {key} does not balance")
    entry_id = await repository.insert_entry(session, key, kind, invoice_pk, narrative[:255])
    if entry_id is None:
        return None
    balances = await _add_to_wallets(session, lines)
    now = utc_now()
    postings = [_posting(entry_id, line, balances, now) for line in lines if line.amount_minor != 0]
    await repository.insert_postings(session, [posting.row() for posting in postings])
    return Posted(entry_id, postings)


async def _add_to_wallets(session: AsyncSession, lines: list[Line]) -> dict[int, list[int]]:
    """Add the lines to their wallet accounts' balances, in account id order (two entries
    never wait for each other's rows in opposite orders). Per account, [balance, available]
    as they were before this entry."""
    changes: dict[int, tuple[LedgerAccount | AccountRef, list[int]]] = {}
    for line in lines:
        if line.account.kind == AccountKind.WALLET:
            _, delta = changes.setdefault(line.account.id, (line.account, [0, 0]))
            delta[0] += line.amount_minor
            delta[1] += line.amount_minor if line.status == LineStatus.AVAILABLE else 0
    before: dict[int, list[int]] = {}
    for account_id in sorted(changes):
        account, (balance_delta, available_delta) = changes[account_id]
        balance, available = await repository.add_to_balance(
            session, account_id, balance_delta, available_delta
        )
        if isinstance(account, LedgerAccount):
            set_committed_value(account, "balance_minor", balance)
            set_committed_value(account, "available_minor", available)
        before[account_id] = [balance - balance_delta, available - available_delta]
    return before


def _posting(
    entry_id: int, line: Line, balances: dict[int, list[int]], now: datetime
) -> NewPosting:
    account = line.account
    running = None
    if account.kind == AccountKind.WALLET:
        balances[account.id][0] += line.amount_minor
        running = balances[account.id][0]
    return NewPosting(
        transaction_id=ids.random_code(12),
        entry_id=entry_id,
        account_id=account.id,
        amount_minor=line.amount_minor,
        trans_type=line.trans_type,
        status=line.status,
        running_balance_minor=running,
        narrative=line.narrative[:255],
        available_at=now if line.status == LineStatus.AVAILABLE else None,
        created_at=now,
        updated_at=now,
    )


def collection_key(invoice_pk: int) -> str:
    return f"invoice:{invoice_pk}:collection"


class Collected(Protocol):
    """What a collection's posting reads of its invoice (payments' ORM instance or its locked
    row: the ledger knows neither)."""

    @property
    def id(self) -> int: ...
    @property
    def invoice_id(self) -> str: ...
    @property
    def business_id(self) -> int: ...
    @property
    def wallet_id(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def mpesa_reference(self) -> str | None: ...
    @property
    def value_minor(self) -> int: ...
    @property
    def charges_minor(self) -> int: ...


async def post_collection(session: AsyncSession, invoice: Collected) -> LineStatus | None:
    """Credit a COMPLETE invoice to its wallet, net of fees: exactly once per invoice. The
    status of the credit (CLEARING or AVAILABLE), or None if it was credited before."""
    wallet_account_pk, delay_s = await repository.collection_terms(
        session, invoice.business_id, invoice.wallet_id
    )
    clearing = delay_s > 0
    status = LineStatus.CLEARING if clearing else LineStatus.AVAILABLE
    wallet = AccountRef(wallet_account_pk, WALLET)
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
        return None
    if clearing:
        at = utc_now() + timedelta(seconds=delay_s)
        await add_job(
            session, RELEASE_JOB, f"release:{posted.entry_id}", at, {"entry_id": posted.entry_id}
        )
    return status


async def release_clearing(session: AsyncSession, entry_pk: int) -> Released:
    """Make an entry's CLEARING lines AVAILABLE. Idempotent: a second release releases none."""
    entry = await session.get(LedgerEntry, entry_pk)
    if entry is None:
        return Released(0, None)
    accounts = await repository.lock_entry_accounts(session, entry_pk)
    lines = await repository.clearing_lines(session, entry_pk)
    now = utc_now()
    for line in lines:
        accounts[line.account_id].available_minor += line.amount_minor
        line.status = LineStatus.AVAILABLE
        line.available_at = now
    return Released(len(lines), entry.invoice_id)
