"""Databases: SQLite embedded (one file, WAL, one node) or PostgreSQL (many nodes).

The one place that knows the differences between the two backends, and the one place that
commits: services receive a session, `flush()` when they need ids, and never commit.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 5_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, sqlite_begin: str = "BEGIN", **kwargs: Any) -> AsyncEngine:
    """`sqlite_begin`: how SQLite transactions start; `BEGIN IMMEDIATE` takes the write lock
    up front, so a transaction never reads a value that another writer changes before it
    writes (the driver would otherwise read outside any transaction)."""
    if is_sqlite(url):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql(sqlite_begin)

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling begins only before writes; we begin ourselves.
    dbapi_connection.isolation_level = None
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite;
    # the busy timeout makes writers of other processes (the CLI) wait instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


class Database:
    """An engine plus the rules for using it.

    `transaction()` is a unit of work that commits on success and rolls back on error.
    PostgreSQL serialises conflicting writers with row locks (`FOR UPDATE`). SQLite has one
    writer at a time: its write transactions begin IMMEDIATE (holding the write lock from the
    first statement, so reads inside them are current), and this process's writers queue
    behind an asyncio lock rather than block driver threads on the file lock. Reads use a
    separate engine whose transactions begin deferred and never wait for writers (WAL).
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        self.engine = create_engine(url, **engine_kwargs)
        self.write_engine = (
            create_engine(url, sqlite_begin="BEGIN IMMEDIATE", **engine_kwargs)
            if self.is_sqlite
            else self.engine
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._sqlite_write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self._sqlite_write_lock is None:
            async with self.write_sessions() as session, session.begin():
                yield session
            return
        async with self._sqlite_write_lock, self.write_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work: no lock, nothing committed."""
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


async def insert_ignore(session: AsyncSession, model: Any, values: dict[str, Any]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on either backend: concurrent first inserts of one
    natural key both succeed, and one row results."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await session.execute(pg_insert(model).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        await session.execute(sqlite_insert(model).values(**values).on_conflict_do_nothing())
