"""`pesagate webhook add|list|remove|test`."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.table import Table

from pesagate.commands import console, err_console, load_settings, with_database
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.errors import ApiError
from pesagate.webhooks import service
from pesagate.webhooks.schemas import EndpointCreate

if TYPE_CHECKING:
    from pesagate.webhooks.delivery import AttemptResult

T = TypeVar("T")
webhook_app = typer.Typer(help="Webhook endpoints.", no_args_is_help=True)


@webhook_app.command("add")
def add(
    merchant: Annotated[str, typer.Argument(help="business_id or exact name")],
    url: str,
    challenge: Annotated[str, typer.Option(help="Echoed in every payload, to recognise us.")],
    collection: Annotated[bool, typer.Option(help="collection_event")] = True,
    wallet_transfer: Annotated[bool, typer.Option(help="wallet_transfer_event")] = False,
    reversal: Annotated[bool, typer.Option(help="reversal_event (refunds)")] = False,
) -> None:
    """Add an endpoint; prints its id and signing secret (shown only now)."""
    settings = load_settings()
    request = EndpointCreate(
        endpoint=url,
        challenge=challenge,
        collection_event=collection,
        wallet_transfer_event=wallet_transfer,
        reversal_event=reversal,
    )
    live = settings.env == "live"
    endpoint = _or_exit(
        lambda db: service.add_merchant_endpoint(db, merchant, request, live), settings
    )
    console.print(
        f"[bold]id[/]: {endpoint.public_id}\n[bold]signing_secret[/]: {endpoint.signing_secret}"
    )


@webhook_app.command("list")
def list_endpoints(
    merchant: Annotated[str, typer.Argument(help="business_id or exact name")],
) -> None:
    """A merchant's endpoints."""
    endpoints = _or_exit(lambda db: service.merchant_endpoints(db, merchant))
    table = Table("id", "endpoint", "active", "topics", "failures")
    for endpoint in endpoints:
        topics = [flag for flag in service.FLAGS if getattr(endpoint, flag)]
        table.add_row(
            endpoint.public_id,
            endpoint.url,
            str(endpoint.is_active),
            ", ".join(topics),
            str(endpoint.failures_count),
        )
    console.print(table)


@webhook_app.command("remove")
def remove(webhook_id: str) -> None:
    """Remove an endpoint (its event log stays)."""
    if not _or_exit(lambda db: service.remove_endpoint(db, webhook_id)):
        _no_such_endpoint(webhook_id)
    console.print(f"removed {webhook_id}")


@webhook_app.command("test")
def test(webhook_id: str) -> None:
    """Send a signed test event now, once, and show what the endpoint answered."""
    from pesagate.webhooks.delivery import Deliverer  # its HTTP stack: only this command's

    settings = load_settings()

    async def send(db: Database) -> "AttemptResult | None":
        event = await service.add_test_event(db, webhook_id)
        if event is None:
            _no_such_endpoint(webhook_id)
        deliverer = Deliverer(db, settings)
        try:
            return await deliverer.attempt_once(event.id)
        finally:
            await deliverer.aclose()

    result = _or_exit(send, settings)
    if result is None or not result.ok:
        detail = result.error if result else "the endpoint is disabled"
        err_console.print(f"[red]not delivered[/]: {detail}")
        raise typer.Exit(1)
    console.print(f"[green]delivered[/]: HTTP {result.status_code} in {result.duration_ms} ms")


def _no_such_endpoint(webhook_id: str) -> NoReturn:
    err_console.print(f"[red]No webhook {webhook_id}.[/]")
    raise typer.Exit(1)


def _or_exit(work: Callable[[Database], Awaitable[T]], settings: Settings | None = None) -> T:
    try:
        return with_database(work, settings)
    except ApiError as exc:
        err_console.print(f"[red]{exc.body()}[/]")
        raise typer.Exit(1) from None
