"""SQLite statements run on the event loop (pesagate.sqlite_inline): another process holding the
write lock must be waited for asleep, never by blocking the loop, and given up on in time."""

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from pesagate import db as db_module
from pesagate.db import Database


@pytest.fixture
def sqlite_db(tmp_path):
    path = tmp_path / "inline.db"
    return path, Database(f"sqlite+aiosqlite:///{path}")


def hold_write_lock(path, seconds: float, ready: threading.Event) -> threading.Thread:
    """Another connection (as another process would) holding the write lock for a while."""

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


async def table_locked_by_another(db, path, seconds: float) -> threading.Thread:
    """An empty table `t`, and another connection holding the write lock for `seconds`."""
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE t (v INTEGER)"))
    ready = threading.Event()
    holder = hold_write_lock(path, seconds, ready)
    ready.wait()
    return holder


async def count_ticks(stop: asyncio.Event) -> int:
    ticks = 0
    while not stop.is_set():
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


def test_a_writer_waits_for_another_connections_lock_without_blocking_the_loop(sqlite_db):
    path, db = sqlite_db

    async def scenario():
        holder = await table_locked_by_another(db, path, 0.5)
        stop = asyncio.Event()
        ticker = asyncio.create_task(count_ticks(stop))
        started = time.monotonic()
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
        waited = time.monotonic() - started
        stop.set()
        holder.join()
        async with db.read() as session:
            rows = (await session.execute(text("SELECT count(*) FROM t"))).scalar()
        await db.dispose()
        return waited, await ticker, rows

    waited, ticks, rows = asyncio.run(scenario())
    assert waited >= 0.4  # it did wait for the other writer
    # And the loop kept running meanwhile: 50 ticks on an idle machine, 8 seen on a loaded CI
    # one; a loop blocked for the whole wait would count none or one.
    assert ticks >= 4
    assert rows == 1


def test_a_writer_gives_up_after_the_wait_limit(sqlite_db, monkeypatch):
    path, db = sqlite_db
    monkeypatch.setattr(db_module, "SQLITE_WRITE_WAIT_S", 0.2)

    async def scenario():
        holder = await table_locked_by_another(db, path, 1.0)
        try:
            with pytest.raises(OperationalError, match="locked"):
                async with db.transaction() as session:
                    await session.execute(text("INSERT INTO t VALUES (1)"))
        finally:
            holder.join()
        async with db.read() as session:
            rows = (await session.execute(text("SELECT count(*) FROM t"))).scalar()
        await db.dispose()
        return rows

    assert asyncio.run(scenario()) == 0


def test_readers_are_not_blocked_by_a_writer(sqlite_db):
    path, db = sqlite_db

    async def scenario():
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE t (v INTEGER)"))
            await session.execute(text("INSERT INTO t VALUES (1)"))
        ready = threading.Event()
        holder = hold_write_lock(path, 2.0, ready)
        ready.wait()
        async with db.read() as session:
            value = (await session.execute(text("SELECT v FROM t"))).scalar()
        writer_still_holding = holder.is_alive()
        holder.join()
        await db.dispose()
        return value, writer_still_holding

    value, writer_still_holding = asyncio.run(scenario())
    assert value == 1
    assert writer_still_holding  # WAL: the reader did not wait for the writer


def test_a_failed_transaction_rolls_back_and_releases_the_lock(sqlite_db):
    _, db = sqlite_db

    async def scenario():
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE t (v INTEGER)"))
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
                raise RuntimeError("boom")
        async with db.transaction() as session:  # the lock is free again
            await session.execute(text("INSERT INTO t VALUES (2)"))
        async with db.read() as session:
            values = (await session.execute(text("SELECT v FROM t"))).scalars().all()
        await db.dispose()
        return values

    assert asyncio.run(scenario()) == [2]
