"""`pesagate wallet list`, `pesagate ledger verify`, `pesagate ledger report`."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.commands import console, err_console, load_settings, prepare_schema, run
from pesagate.db import Database
from pesagate.errors import NotFound
from pesagate.kit.money import format_minor
from pesagate.ledger.verify import verify
from pesagate.merchants.service import find_business
from pesagate.models import (
    AccountKind,
    Business,
    LedgerAccount,
    LedgerPosting,
    TransType,
    Wallet,
)

wallet_app = typer.Typer(help="Wallets.", no_args_is_help=True)
ledger_app = typer.Typer(help="The books.", no_args_is_help=True)
T = TypeVar("T")


def _read(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    settings = load_settings()

    async def go() -> T:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            async with db.read(snapshot=True) as session:
                return await work(session)
        finally:
            await db.dispose()

    return run(go())


@wallet_app.command("list")
def list_wallets(
    merchant: Annotated[str, typer.Argument(help="business_id or exact name")],
) -> None:
    """A merchant's wallets with their balances."""

    async def work(session: AsyncSession) -> list[Any]:
        business = await find_business(session, merchant)
        rows = await session.execute(
            select(Wallet, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.wallet_id == Wallet.id)
            .where(Wallet.business_id == business.id)
            .order_by(Wallet.id)
        )
        return list(rows)

    try:
        rows = _read(work)
    except NotFound as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    table = Table("wallet_id", "label", "type", "currency", "current", "available")
    for wallet, account in rows:
        table.add_row(
            wallet.wallet_id,
            wallet.label,
            wallet.wallet_type,
            wallet.currency,
            format_minor(account.balance_minor),
            format_minor(account.available_minor),
        )
    console.print(table)


@ledger_app.command("verify")
def verify_command() -> None:
    """Recompute every balance from postings; exit 1 on any finding."""
    findings = _read(verify)
    for finding in findings:
        console.print(f"[red]✗[/] {finding}")
    if findings:
        console.print(f"[bold red]{len(findings)} finding(s)[/]")
        raise typer.Exit(1)
    console.print("[bold green]The books balance.[/] Every COMPLETE invoice was credited once.")


@ledger_app.command("report")
def report() -> None:
    """Collected, fees and balances per merchant."""
    rows, platform = _read(_report)
    table = Table("business_id", "name", "collected", "fees", "balance", "available")
    for row in rows:
        table.add_row(row[0], row[1], *(format_minor(value or 0) for value in row[2:]))
    console.print(table)
    for code, total in platform:
        console.print(f"{code}: {format_minor(total or 0)}")


async def _report(session: AsyncSession) -> tuple[list[Any], list[Any]]:
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
    per_business = await session.execute(
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
    platform = await session.execute(
        select(LedgerAccount.code, func.sum(LedgerPosting.amount_minor))
        .outerjoin(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind != AccountKind.WALLET)
        .group_by(LedgerAccount.code)
    )
    return list(per_business), list(platform)
