"""PostgreSQL connections are pinged at checkout only after being idle (`db.IDLE_PING_S`): a
pooled connection whose server side died while it was idle is replaced before a statement
runs on it."""

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pesagate import db as db_module
from pesagate.db import Database

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)

BACKEND = text("SELECT pg_backend_pid()")


async def backend_pid(db: Database) -> int:
    async with db.read_one() as connection:
        return int((await connection.execute(BACKEND)).scalar_one())


async def terminate(db_url: str, pid: int) -> None:
    """End that server process, as a server restart would, from a connection of its own."""
    other = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await other.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await other.close()


async def test_an_idle_connection_that_died_is_replaced_before_use(db_url, monkeypatch):
    db = Database(db_url, pool_size=1, max_overflow=1)
    try:
        first = await backend_pid(db)
        await terminate(db_url, first)
        monkeypatch.setattr(db_module, "IDLE_PING_S", 0.0)  # as if idle for long

        second = await backend_pid(db)  # no error: the checkout's ping found it dead

        assert second != first
    finally:
        await db.dispose()


async def test_a_connection_used_just_now_is_not_pinged(db_url, monkeypatch):
    """The trade-off: within IDLE_PING_S a dead connection fails its statement once; the pool
    is then refilled and the next statement succeeds."""
    db = Database(db_url, pool_size=1, max_overflow=1)
    try:
        first = await backend_pid(db)
        await terminate(db_url, first)
        monkeypatch.setattr(db_module, "IDLE_PING_S", 3600.0)

        with pytest.raises(DBAPIError) as failed:
            await backend_pid(db)
        assert failed.value.connection_invalidated

        assert await backend_pid(db) != first
    finally:
        await db.dispose()
