"""Helpers shared by CLI commands: run a coroutine, prepare the schema, open services."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from pesagate import migrate
from pesagate.config import Settings
from pesagate.db import Database

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def run(awaitable: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await awaitable

    return asyncio.run(wrapper())


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # live mode refusing placeholder settings, or a bad value
        err_console.print(f"[bold red]Configuration error:[/] {exc}")
        raise typer.Exit(2) from None


async def prepare_schema(settings: Settings) -> None:
    """Migrate to the newest schema (safe with many nodes), unless auto-migration is off."""
    if await migrate.is_up_to_date(settings.database_url):
        return
    if settings.auto_migrate:
        await migrate.upgrade(settings.database_url)
        return
    err_console.print(
        "[bold red]The database schema is not up to date.[/] Run `pesagate migrate` first."
    )
    raise typer.Exit(3)


def with_database(work: Callable[[Database], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run one use case against the configured database, its schema prepared first."""
    settings = settings or load_settings()

    async def go() -> T:
        await prepare_schema(settings)
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return run(go())
