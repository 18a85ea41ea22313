"""`pesagate webhook add|list|remove|test`."""

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.commands import console, err_console, load_settings, prepare_schema, run
from pesagate.db import Database
from pesagate.errors import ApiError
from pesagate.kit.clock import utc_now
from pesagate.merchants.service import find_business
from pesagate.models import Topic, WebhookEndpoint
from pesagate.webhooks import service
from pesagate.webhooks.delivery import AttemptResult, Deliverer
from pesagate.webhooks.emit import add_event
from pesagate.webhooks.schemas import EndpointCreate

T = TypeVar("T")
webhook_app = typer.Typer(help="Webhook endpoints.", no_args_is_help=True)


@webhook_app.command("add")
def add(
    merchant: Annotated[str, typer.Argument(help="business_id or exact name")],
    url: str,
    challenge: Annotated[str, typer.Option(help="Echoed in every payload, to recognise us.")],
    collection: Annotated[bool, typer.Option(help="collection_event")] = True,
    wallet_transfer: Annotated[bool, typer.Option(help="wallet_transfer_event")] = False,
) -> None:
    """Add an endpoint; prints its id and signing secret (shown only now)."""
    settings = load_settings()
    request = EndpointCreate(
        endpoint=url,
        challenge=challenge,
        collection_event=collection,
        wallet_transfer_event=wallet_transfer,
    )

    async def go() -> WebhookEndpoint:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                business = await find_business(session, merchant)
                return await service.create_endpoint(
                    session, business.id, request, live=settings.env == "live"
                )
        finally:
            await db.dispose()

    endpoint = _or_exit(go)
    console.print(
        f"[bold]id[/]: {endpoint.public_id}\n[bold]signing_secret[/]: {endpoint.signing_secret}"
    )


@webhook_app.command("list")
def list_endpoints(
    merchant: Annotated[str, typer.Argument(help="business_id or exact name")],
) -> None:
    """A merchant's endpoints."""
    settings = load_settings()

    async def go() -> list[WebhookEndpoint]:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            async with db.read() as session:
                business = await find_business(session, merchant)
                rows = await session.scalars(
                    select(WebhookEndpoint)
                    .where(
                        WebhookEndpoint.business_id == business.id,
                        WebhookEndpoint.deleted_at.is_(None),
                    )
                    .order_by(WebhookEndpoint.id)
                )
                return list(rows)
        finally:
            await db.dispose()

    table = Table("id", "endpoint", "active", "topics", "failures")
    for endpoint in _or_exit(go):
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
    settings = load_settings()

    async def go() -> None:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                endpoint = await _endpoint(session, webhook_id)
                service.delete_endpoint(endpoint)
        finally:
            await db.dispose()

    _or_exit(go)
    console.print(f"removed {webhook_id}")


@webhook_app.command("test")
def test(webhook_id: str) -> None:
    """Send a signed test event now, once, and show what the endpoint answered."""
    settings = load_settings()

    async def go() -> AttemptResult | None:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        deliverer = Deliverer(db, settings)
        try:
            async with db.transaction() as session:
                endpoint = await _endpoint(session, webhook_id)
                resource = {
                    "topic": Topic.TEST.value,
                    "message": "pesagate test event",
                    "sent_at": utc_now().isoformat(),
                }
                event = await add_event(
                    session, endpoint, Topic.TEST, f"test:{endpoint.id}", resource
                )
            return await deliverer.attempt_once(event.id)
        finally:
            await deliverer.aclose()
            await db.dispose()

    result = _or_exit(go)
    if result is None or not result.ok:
        detail = result.error if result else "the endpoint is disabled"
        err_console.print(f"[red]not delivered[/]: {detail}")
        raise typer.Exit(1)
    console.print(f"[green]delivered[/]: HTTP {result.status_code} in {result.duration_ms} ms")


async def _endpoint(session: AsyncSession, webhook_id: str) -> WebhookEndpoint:
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.public_id == webhook_id, WebhookEndpoint.deleted_at.is_(None)
        )
    )
    if endpoint is None:
        err_console.print(f"[red]No webhook {webhook_id}.[/]")
        raise typer.Exit(1)
    return endpoint


def _or_exit(make: Callable[[], Awaitable[T]]) -> T:
    try:
        return run(make())
    except ApiError as exc:
        err_console.print(f"[red]{exc.body()}[/]")
        raise typer.Exit(1) from None
