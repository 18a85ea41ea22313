"""`pesagate wallet list`, `pesagate ledger verify`, `pesagate ledger report`."""

from typing import Annotated

import typer
from rich.table import Table

from pesagate.commands import console, err_console, with_database
from pesagate.errors import NotFound
from pesagate.kit.money import format_minor
from pesagate.ledger import service

wallet_app = typer.Typer(help="Wallets.", no_args_is_help=True)
ledger_app = typer.Typer(help="The books.", no_args_is_help=True)


@wallet_app.command("list")
def list_wallets(
    merchant: Annotated[str, typer.Argument(help="business_id or exact name")],
) -> None:
    """A merchant's wallets with their balances."""
    try:
        rows = with_database(lambda db: service.merchant_wallets(db, merchant))
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
    findings = with_database(service.findings)
    for finding in findings:
        console.print(f"[red]✗[/] {finding}")
    if findings:
        console.print(f"[bold red]{len(findings)} finding(s)[/]")
        raise typer.Exit(1)
    console.print("[bold green]The books balance.[/] Every COMPLETE invoice was credited once.")


@ledger_app.command("report")
def report() -> None:
    """Collected, fees and balances per merchant."""
    rows, platform = with_database(service.report)
    table = Table("business_id", "name", "collected", "fees", "balance", "available")
    for row in rows:
        table.add_row(row[0], row[1], *(format_minor(value or 0) for value in row[2:]))
    console.print(table)
    for code, total in platform:
        console.print(f"{code}: {format_minor(total or 0)}")
