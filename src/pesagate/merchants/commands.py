"""`pesagate merchant …` and `pesagate keys …`."""

from decimal import Decimal, InvalidOperation
from typing import Annotated

import orjson
import typer
from rich.table import Table
from sqlalchemy import select

from pesagate.commands import console, err_console, load_settings, prepare_schema, run
from pesagate.db import Database
from pesagate.errors import NotFound
from pesagate.kit.money import CENTS_PER_UNIT, format_minor, ppm_to_rate, rate_to_ppm
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


@merchant_app.command("create")
def create(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    short_name: Annotated[
        str | None, typer.Option(help="What the customer's prompt shows (13 characters).")
    ] = None,
) -> None:
    """Create a merchant with its keys and KES settlement wallet. The secret key is shown once."""
    settings = load_settings()

    async def go() -> service.NewMerchant:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                return await service.create_merchant(
                    session, name, Environment(settings.env), short_name
                )
        finally:
            await db.dispose()

    created = run(go())
    result = {
        "business_id": created.business.business_id,
        "name": created.business.name,
        "public_key": created.keys.public_key,
        "secret_key": created.keys.secret_key,
        "wallet_id": created.settlement_wallet.wallet_id,
    }
    if as_json:
        typer.echo(orjson.dumps(result).decode())
        return
    for key, value in result.items():
        console.print(f"[bold]{key}[/]: {value}")
    console.print("[yellow]Store the secret key now: it is not shown again.[/]")


@merchant_app.command("list")
def list_merchants() -> None:
    """List merchants and their payment settings."""
    settings = load_settings()

    async def go() -> list[Business]:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            async with db.read() as session:
                return list((await session.scalars(select(Business).order_by(Business.id))).all())
        finally:
            await db.dispose()

    table = _settings_table()
    for business in run(go()):
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

    async def go() -> Business:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                business = await service.find_business(session, merchant)
                service.apply_settings(business, change)
                return business
        finally:
            await db.dispose()

    try:
        business = run(go())
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
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"not a valid KES amount: {raw}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a valid KES amount: {raw}")
    return int(value * CENTS_PER_UNIT)


@keys_app.command("rotate")
def rotate(merchant: Annotated[str, typer.Argument(help="business_id or exact name")]) -> None:
    """Revoke the merchant's keys for this environment and issue a new pair."""
    settings = load_settings()

    async def go() -> tuple[str, str]:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                business = await service.find_business(session, merchant)
                pair = await service.rotate_keys(session, business, Environment(settings.env))
                return pair.public_key, pair.secret_key
        finally:
            await db.dispose()

    try:
        public_key, secret_key = run(go())
    except NotFound as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"[bold]public_key[/]: {public_key}\n[bold]secret_key[/]: {secret_key}")
    console.print(
        "[yellow]The old keys are revoked (every node stops accepting them within 10 s).[/]"
    )
