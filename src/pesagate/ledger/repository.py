"""The ledger's tables (wallets, accounts, entries, postings). Every statement on them is here;
callers pass their session (the transaction is theirs). Reads are scoped to one business:
another business's ids do not exist."""

from dataclasses import fields
from typing import Any

from sqlalchemy import (
    Select,
    String,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pesagate.db import AnySession, connection_of, insert_ignoring, select_rows, write
from pesagate.kit.clock import utc_now
from pesagate.kit.pagination import Page
from pesagate.ledger.wallet_view import WalletView
from pesagate.models import (
    AccountKind,
    Business,
    EntryKind,
    HoldStatus,
    Invoice,
    InvoiceState,
    LedgerAccount,
    LedgerEntry,
    LedgerHold,
    LedgerPosting,
    LineStatus,
    Refund,
    RefundStatus,
    TransType,
    Wallet,
)

StatementRow = tuple[LedgerPosting, Wallet, int | None]  # a line, its wallet, its invoice's pk


async def wallet_with_account(
    session: AsyncSession, business_pk: int, wallet_id: str
) -> tuple[Wallet, LedgerAccount] | None:
    row = (
        await session.execute(_wallets_of(business_pk).where(Wallet.wallet_id == wallet_id))
    ).first()
    return None if row is None else (row[0], row[1])


async def wallets_page(
    session: AsyncSession, business_pk: int, page: Page
) -> tuple[int, list[tuple[Wallet, LedgerAccount]]]:
    statement = _wallets_of(business_pk)
    count = await _count(session, statement)
    rows = await session.execute(statement.order_by(Wallet.id).offset(page.offset).limit(page.size))
    return count, [(row[0], row[1]) for row in rows]


# Built once: every push reads the business's wallets.
_WALLET_VIEWS = (
    select(*(Wallet.__table__.c[field.name] for field in fields(WalletView)))
    .where(Wallet.business_id == bindparam("business_pk"))
    .order_by(Wallet.id)
)


async def wallet_views(connection: AsyncConnection, business_pk: int) -> list[WalletView]:
    rows = await select_rows(connection, _WALLET_VIEWS, {"business_pk": business_pk})
    return [WalletView(*row) for row in rows]


async def wallets_of(session: AsyncSession, business_pk: int) -> list[tuple[Wallet, LedgerAccount]]:
    rows = await session.execute(_wallets_of(business_pk).order_by(Wallet.id))
    return [(row[0], row[1]) for row in rows]


def _wallets_of(business_pk: int) -> Select[Wallet, LedgerAccount]:
    return (
        select(Wallet, LedgerAccount)
        .join(LedgerAccount, LedgerAccount.wallet_id == Wallet.id)
        .where(Wallet.business_id == business_pk)
    )


async def label_taken(session: AsyncSession, business_pk: int, currency: str, label: str) -> bool:
    taken = await session.scalar(
        select(Wallet.id).where(
            Wallet.business_id == business_pk, Wallet.currency == currency, Wallet.label == label
        )
    )
    return taken is not None


async def statement_page(
    session: AsyncSession, business_pk: int, page: Page, wallet_pk: int | None
) -> tuple[int, list[StatementRow]]:
    """Statement lines of the business's wallets (or of one), newest first."""
    statement = (
        select(LedgerPosting, Wallet, LedgerEntry.invoice_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .join(Wallet, Wallet.id == LedgerAccount.wallet_id)
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(Wallet.business_id == business_pk)
    )
    if wallet_pk is not None:
        statement = statement.where(Wallet.id == wallet_pk)
    count = await _count(session, statement)
    rows = await session.execute(
        statement.order_by(LedgerPosting.id.desc()).offset(page.offset).limit(page.size)
    )
    return count, [(row[0], row[1], row[2]) for row in rows]


async def wallet_account(
    session: AsyncSession, wallet_pk: int, *, lock: bool = False
) -> LedgerAccount | None:
    statement = select(LedgerAccount).where(LedgerAccount.wallet_id == wallet_pk)
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement.execution_options(populate_existing=True))


_ADD_TO_BALANCE = (
    update(LedgerAccount)
    .where(LedgerAccount.id == bindparam("account_id"))
    .values(
        balance_minor=LedgerAccount.balance_minor + bindparam("balance_delta"),
        available_minor=LedgerAccount.available_minor + bindparam("available_delta"),
        updated_at=bindparam("now"),
    )
    .returning(LedgerAccount.balance_minor, LedgerAccount.available_minor)
)


async def add_to_balance(
    session: AsyncSession, account_id: int, balance_delta: int, available_delta: int
) -> tuple[int, int]:
    """Add to an account's balances (locking its row); its balance and available after."""
    connection = await connection_of(session)
    params = {
        "account_id": account_id,
        "balance_delta": balance_delta,
        "available_delta": available_delta,
        "now": utc_now(),
    }
    [row] = (await write(connection, _ADD_TO_BALANCE, params)).returned
    return int(row[0]), int(row[1])


async def account_by_code(session: AsyncSession, code: str) -> LedgerAccount | None:
    return await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))


# Both facts a collection is posted with, in one statement (every success callback asks).
_COLLECTION_TERMS = (
    select(LedgerAccount.id, Business.clearing_delay_s)
    .join(Business, Business.id == bindparam("business_pk"))
    .where(LedgerAccount.wallet_id == bindparam("wallet_pk"))
)


async def collection_terms(
    session: AsyncSession, business_pk: int, wallet_pk: int
) -> tuple[int, int]:
    """The wallet's ledger account id, and how long the business's collections stay CLEARING
    (0: AVAILABLE at once)."""
    connection = await connection_of(session)
    where = {"business_pk": business_pk, "wallet_pk": wallet_pk}
    rows = await select_rows(connection, _COLLECTION_TERMS, where)
    assert rows, f"wallet {wallet_pk} of business {business_pk} has no ledger account"
    return int(rows[0][0]), int(rows[0][1])


# Entries and postings are written with prebuilt Core statements, never as ORM instances:
# every collection writes one entry and four postings (issue 17's callback path).
_NEW_POSTINGS = insert(LedgerPosting)


async def insert_entry(
    session: AsyncSession, key: str, kind: EntryKind, invoice_pk: int | None, narrative: str
) -> int | None:
    """The new entry's id; None if an entry with this key exists (it is left as it is)."""
    statement = insert_ignoring(session, LedgerEntry, returning="id")
    values = {
        "key": key,
        "kind": kind,
        "invoice_id": invoice_pk,
        "narrative": narrative,
        "created_at": utc_now(),  # given, not defaulted: see `db.write`
    }
    connection = await connection_of(session)
    returned = (await write(connection, statement, values)).returned
    return int(returned[0][0]) if returned else None


async def insert_postings(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    connection = await connection_of(session)
    await write(connection, _NEW_POSTINGS, rows)


async def lock_entry_accounts(session: AsyncSession, entry_pk: int) -> dict[int, LedgerAccount]:
    """The accounts an entry posts to, locked in id order (so two releases cannot deadlock)."""
    account_ids = select(LedgerPosting.account_id).where(LedgerPosting.entry_id == entry_pk)
    accounts = await session.scalars(
        select(LedgerAccount)
        .where(LedgerAccount.id.in_(account_ids))
        .order_by(LedgerAccount.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {account.id: account for account in accounts}


async def hold_by_key(session: AsyncSession, key: str, *, lock: bool = False) -> LedgerHold | None:
    statement = select(LedgerHold).where(LedgerHold.key == key)
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement.execution_options(populate_existing=True))


async def clearing_lines(session: AsyncSession, entry_pk: int) -> list[LedgerPosting]:
    lines = await session.scalars(
        select(LedgerPosting).where(
            LedgerPosting.entry_id == entry_pk, LedgerPosting.status == LineStatus.CLEARING
        )
    )
    return list(lines)


async def merchant_totals(session: AsyncSession) -> list[Any]:
    """Per business: business_id, name, collected, fees, balance, available."""

    def of_type(kind: TransType) -> Any:
        return case((LedgerPosting.trans_type == kind, LedgerPosting.amount_minor), else_=0)

    lines = (
        select(
            LedgerAccount.wallet_id.label("wallet_pk"),
            func.sum(of_type(TransType.SALE)).label("collected"),
            func.sum(-of_type(TransType.CHARGE)).label("fees"),
        )
        .join(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == AccountKind.WALLET)
        .group_by(LedgerAccount.wallet_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Business.business_id,
            Business.name,
            func.sum(lines.c.collected),
            func.sum(lines.c.fees),
            func.sum(LedgerAccount.balance_minor),
            func.sum(LedgerAccount.available_minor),
        )
        .join(Wallet, Wallet.business_id == Business.id)
        .join(LedgerAccount, LedgerAccount.wallet_id == Wallet.id)
        .outerjoin(lines, lines.c.wallet_pk == Wallet.id)
        .group_by(Business.id, Business.business_id, Business.name)
        .order_by(Business.id)
    )
    return list(rows)


async def platform_totals(session: AsyncSession) -> list[Any]:
    """Per platform account: its code and the sum of its postings."""
    rows = await session.execute(
        select(LedgerAccount.code, func.sum(LedgerPosting.amount_minor))
        .outerjoin(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind != AccountKind.WALLET)
        .group_by(LedgerAccount.code)
    )
    return list(rows)


# `pesagate ledger verify`: the books recomputed from postings.


async def entry_sums(session: AsyncSession) -> list[Any]:
    """Per entry: its key, the sum of its postings and their number."""
    sums = (
        select(
            LedgerEntry.key,
            func.coalesce(func.sum(LedgerPosting.amount_minor), 0),
            func.count(LedgerPosting.id),
        )
        .outerjoin(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .group_by(LedgerEntry.id, LedgerEntry.key)
    )
    return list(await session.execute(sums))


async def wallet_account_sums(session: AsyncSession) -> list[Any]:
    """Per wallet account: code, balance, available, sum of postings, of AVAILABLE ones."""
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
    return list(await session.execute(totals))


async def wrong_running_balances(session: AsyncSession) -> list[Any]:
    """Wallet lines whose running balance is not the sum of their account's lines so far."""
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
    return list(await session.execute(wrong))


async def collections_by_invoice(session: AsyncSession) -> list[Any]:
    """Every COMPLETE or credited invoice with what its collection entries credited."""
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
    return list(rows)


async def held_sums(session: AsyncSession) -> list[Any]:
    """Per wallet account: code, held_minor, and the sum of its HELD holds."""
    held = case((LedgerHold.status == HoldStatus.HELD, LedgerHold.amount_minor), else_=0)
    rows = await session.execute(
        select(
            LedgerAccount.code,
            LedgerAccount.held_minor,
            func.coalesce(func.sum(held), 0),
            LedgerAccount.available_minor,
        )
        .outerjoin(LedgerHold, LedgerHold.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == AccountKind.WALLET)
        .group_by(LedgerAccount.id)
    )
    return list(rows)


async def refunds_with_books(session: AsyncSession) -> list[Any]:
    """Every refund with its hold and its REFUND entry's wallet lines (an audit read of the
    refunds domain's table, like the invoices read above)."""
    wallet_lines = (
        select(
            LedgerEntry.key.label("key"),
            func.count(func.distinct(LedgerEntry.id)).label("entries"),
            func.sum(LedgerPosting.amount_minor).label("net"),
        )
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerEntry.kind == EntryKind.REFUND, LedgerAccount.kind == AccountKind.WALLET)
        .group_by(LedgerEntry.key)
        .subquery()
    )
    refund_key = literal("refund:").concat(cast(Refund.id, String))
    rows = await session.execute(
        select(
            Refund.chargeback_id,
            Refund.id,
            Refund.status,
            Refund.wallet_debit_minor,
            LedgerHold.status,
            LedgerHold.amount_minor,
            wallet_lines.c.entries,
            wallet_lines.c.net,
        )
        .outerjoin(LedgerHold, LedgerHold.key == refund_key)
        .outerjoin(wallet_lines, wallet_lines.c.key == refund_key)
    )
    return list(rows)


async def refund_entry_keys(session: AsyncSession) -> list[str]:
    return list(
        await session.scalars(select(LedgerEntry.key).where(LedgerEntry.kind == EntryKind.REFUND))
    )


async def refunded_by_invoice(session: AsyncSession) -> list[Any]:
    """Per invoice with refunds: its id, value, refunded_minor, and what its refunds that are
    not CANCELLED add up to."""
    live = case((Refund.status != RefundStatus.CANCELLED, Refund.amount_minor), else_=0)
    rows = await session.execute(
        select(Invoice.invoice_id, Invoice.value_minor, Invoice.refunded_minor, func.sum(live))
        .join(Refund, Refund.invoice_id == Invoice.id)
        .group_by(Invoice.id, Invoice.invoice_id, Invoice.value_minor, Invoice.refunded_minor)
    )
    return list(rows)


async def _count(session: AsyncSession, statement: Any) -> int:
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    return int(total or 0)


async def postings_of_invoice(
    session: AnySession, invoice_pk: int
) -> list[tuple[LedgerEntry, LedgerPosting, LedgerAccount]]:
    """Every posting of the invoice's entries (its collection, its refunds), in order."""
    rows = await session.execute(
        select(LedgerEntry, LedgerPosting, LedgerAccount)
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerEntry.invoice_id == invoice_pk)
        .order_by(LedgerEntry.id, LedgerPosting.id)
    )
    return [(entry, posting, account) for entry, posting, account in rows]
