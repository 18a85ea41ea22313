"""`pesagate merchant …` and `pesagate keys …`."""

from typing import Annotated

import typer
from rich.table import Table

from pesagate.commands import console, err_console, load_settings, with_database
from pesagate.errors import NotFound
from pesagate.kit.money import (
    AmountError,
    format_minor,
    parse_amount_to_minor,
    ppm_to_rate,
    rate_to_ppm,
)
from pesagate.merchants import service
from pesagate.models import Business, Environment, Tariff

SETTINGS_COLUMNS = (
    "name",
    "prompt name",
    "tariff",
    "fee rate",
    "fee min",
    "min",
    "max",
    "clearing",
)
merchant_app = typer.Typer(help="Merchant accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)


@merchant_app.command("list")
def list_merchants() -> None:
    """List merchants and their payment settings."""
    table = _settings_table()
    for business in with_database(service.list_merchants):
        table.add_row(*_settings_row(business))
    console.print(table)


def _settings_table() -> Table:
    # The id is what other commands take: never wrap or cut it, whatever the terminal width.
    table = Table()
    table.add_column("business_id", no_wrap=True, min_width=12)
    for column in SETTINGS_COLUMNS:
        table.add_column(column)
    return table


def _settings_row(business: Business) -> list[str]:
    return [
        business.business_id,
        business.name,
        business.short_name,
        business.default_tariff or "(BUSINESS-PAYS)",
        ppm_to_rate(business.fee_rate_ppm),
        format_minor(business.fee_min_minor),
        format_minor(business.min_amount_minor),
        format_minor(business.max_amount_minor),
        f"{business.clearing_delay_s} s",
    ]


@merchant_app.command("settings")
def settings_command(
    merchant: Annotated[str, typer.Argument(help="business_id or exact name")],
    tariff: Annotated[
        str | None, typer.Option(help="BUSINESS-PAYS, CUSTOMER-PAYS, or 'none' to clear")
    ] = None,
    fee_rate: Annotated[str | None, typer.Option(help="e.g. 0.022")] = None,
    fee_min: Annotated[str | None, typer.Option(help="KES, e.g. 10")] = None,
    min_amount: Annotated[str | None, typer.Option(help="KES")] = None,
    max_amount: Annotated[str | None, typer.Option(help="KES")] = None,
    clearing_delay_s: Annotated[
        int | None, typer.Option(min=0, help="seconds collections stay CLEARING")
    ] = None,
) -> None:
    """Show or change a merchant's payment settings."""
    settings = load_settings()
    try:
        change = service.PaymentSettingsUpdate(
            default_tariff=Tariff(tariff.upper()) if tariff and tariff.lower() != "none" else None,
            clear_default_tariff=bool(tariff and tariff.lower() == "none"),
            fee_rate_ppm=rate_to_ppm(fee_rate) if fee_rate is not None else None,
            fee_min_minor=_kes_to_minor(fee_min),
            min_amount_minor=_kes_to_minor(min_amount),
            max_amount_minor=_kes_to_minor(max_amount),
            clearing_delay_s=clearing_delay_s,
        )
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    try:
        business = with_database(lambda db: service.change_settings(db, merchant, change), settings)
    except (NotFound, ValueError) as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    table = _settings_table()
    table.add_row(*_settings_row(business))
    console.print(table)


def _kes_to_minor(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return parse_amount_to_minor(raw, allow_zero=True)
    except AmountError as exc:
        raise ValueError(f"not a valid KES amount: {raw} ({exc})") from None


@keys_app.command("rotate")
def rotate(merchant: Annotated[str, typer.Argument(help="business_id or exact name")]) -> None:
    """Revoke the merchant's keys for this environment and issue a new pair."""
    settings = load_settings()
    environment = Environment(settings.env)
    try:
        pair = with_database(
            lambda db: service.rotate_merchant_keys(db, merchant, environment), settings
        )
    except NotFound as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"[bold]public_key[/]: {pair.public_key}\n[bold]secret_key[/]: {pair.secret_key}")
    console.print(
        "[yellow]The old keys are revoked (every node stops accepting them within 10 s).[/]"
    )
