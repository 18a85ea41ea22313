"""SQLite statements run on the event loop's own thread, behind aiosqlite's interface.

Why: aiosqlite hands every statement to a private thread and wakes the loop with the result.
Measured on this project's hot paths (bench/profile.py), each hop costs ~80 us idle, and under
load the holder of SQLite's single write lock waits behind every other ready task between its
statements: a write transaction held the lock for ~7 ms, which capped STK pushes at ~60/s.
SQLite itself answers these indexed statements in microseconds, from a local file, and in WAL
mode readers never wait for the writer. So we run them inline: a transaction's statements
execute back to back without yielding to the loop.

What must never happen is the loop blocking on another process's lock: connections here have
`busy_timeout=0`, and `Database.transaction()` takes the write lock with `BEGIN IMMEDIATE`
retried asynchronously (see `db.py`).

SQLAlchemy's aiosqlite dialect drives this object through `async_creator`: it only needs the
awaitable methods below, plus the `_conn`/`_tx` pair its isolation-level setter uses.
"""

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> "_Cursor":
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> "_Cursor":
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> "_Cursor":
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """Stands in for aiosqlite's request queue: runs the function at once."""

    def __init__(self) -> None:
        self.put_nowait = self._run

    @staticmethod
    def _run(item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:
            if future is not None:
                future.set_exception(error)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection  # None once closed
        self._tx = _RunNow()

    def __await__(self) -> Any:
        async def itself() -> "InlineConnection":
            return self

        return itself().__await__()

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The driver's own connection, for the statements `db.py` runs on it directly."""
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None


def inline_connector(path: str) -> Callable[[], InlineConnection]:
    """An `async_creator` for `create_async_engine`: new connections to the database file."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may close a connection from a finaliser thread.
        return InlineConnection(sqlite3.connect(path, check_same_thread=False))

    return connect  # type: ignore[return-value]
