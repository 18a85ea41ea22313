"""Reading wallets and statements for one business (another business's ids do not exist)."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.errors import NotFound
from pesagate.kit.pagination import Page
from pesagate.models import Invoice, LedgerAccount, LedgerEntry, LedgerPosting, Wallet


async def wallet_with_account(
    session: AsyncSession, business_pk: int, wallet_id: str
) -> tuple[Wallet, LedgerAccount]:
    row = (
        await session.execute(
            select(Wallet, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.wallet_id == Wallet.id)
            .where(Wallet.business_id == business_pk, Wallet.wallet_id == wallet_id)
        )
    ).first()
    if row is None:
        raise NotFound("No wallet matches the given query.")
    return row[0], row[1]


async def wallets_page(
    session: AsyncSession, business_pk: int, page: Page
) -> tuple[int, list[tuple[Wallet, LedgerAccount]]]:
    base = (
        select(Wallet, LedgerAccount)
        .join(LedgerAccount, LedgerAccount.wallet_id == Wallet.id)
        .where(Wallet.business_id == business_pk)
    )
    count = await _count(session, base)
    rows = await session.execute(base.order_by(Wallet.id).offset(page.offset).limit(page.size))
    return count, [(row[0], row[1]) for row in rows]


async def statement_page(
    session: AsyncSession, business_pk: int, page: Page, wallet_pk: int | None = None
) -> tuple[int, list[tuple[LedgerPosting, Wallet, Invoice | None]]]:
    """Statement lines of the business's wallets, newest first, each with its invoice."""
    base = (
        select(LedgerPosting, Wallet, LedgerEntry.invoice_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .join(Wallet, Wallet.id == LedgerAccount.wallet_id)
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(Wallet.business_id == business_pk)
    )
    if wallet_pk is not None:
        base = base.where(Wallet.id == wallet_pk)
    count = await _count(session, base)
    rows = list(
        await session.execute(
            base.order_by(LedgerPosting.id.desc()).offset(page.offset).limit(page.size)
        )
    )
    # Invoices in a second query: their eager joins would drop transfer lines from an outer join.
    invoice_pks = {row[2] for row in rows if row[2] is not None}
    invoices = {
        invoice.id: invoice
        for invoice in await session.scalars(select(Invoice).where(Invoice.id.in_(invoice_pks)))
    }
    return count, [(row[0], row[1], invoices.get(row[2] or 0)) for row in rows]


async def _count(session: AsyncSession, statement: Any) -> int:
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    return int(total or 0)
