"""Databases: SQLite embedded (one file, WAL, one node) or PostgreSQL (many nodes).

The one place that knows the differences between the two backends, and the one place that
commits: services receive a session, `flush()` when they need ids, and never commit.
"""

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, NewType

from sqlalchemy import Select, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.asyncio import AsyncSession as _Session

from pesagate.sqlite_inline import InlineConnection, inline_connector

# Two names for one SQLAlchemy class, so that mypy tells them apart: a function that writes
# takes an `AsyncSession` (from `Database.transaction()`), and a read session
# (`Database.read()`, which never commits) is refused there. Queries that serve both take
# `AnySession`.
AsyncSession = NewType("AsyncSession", _Session)
AsyncReadSession = NewType("AsyncReadSession", _Session)
AnySession = AsyncSession | AsyncReadSession
AnySelect = Select[*tuple[Any, ...]]  # a Core SELECT of any columns

# Statements run on the event loop (sqlite_inline.py), so they must not wait long for another
# process's lock: readers in WAL mode only ever wait during recovery; writers take the lock
# once, with BEGIN IMMEDIATE retried asynchronously for up to SQLITE_WRITE_WAIT_S.
SQLITE_READ_BUSY_MS = 50
SQLITE_WRITE_WAIT_S = 10.0
# Short: another process holds the lock for about a millisecond per transaction, so a long
# sleep idles this one (two processes on one file: ~143 pushes/s with 50 ms, ~183 with 5 ms).
SQLITE_WRITE_RETRY_MAX_S = 0.005


# Keys of `session.info`: the database's memo, and what to put in it after the commit.
MEMO = "pesagate.memo"
_AFTER_COMMIT = "pesagate.after_commit"
# Key of the kept SQLite write session's `info`: the `_KeptWriter` (see `connection_of`).
_KEPT = "pesagate.kept"
_SQLITE_WRITE_BEGIN = "BEGIN IMMEDIATE"

# SQLite: a deferred transaction reads one snapshot from its first read (WAL). PostgreSQL:
# the session's transaction is already open; this must be its first statement.
_SNAPSHOT_BEGIN = {
    True: "BEGIN",
    False: "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, sqlite_begin: str | None = "BEGIN", sqlite_busy_ms: int = 0, **kwargs: Any
) -> AsyncEngine:
    """`sqlite_begin`: how SQLite transactions start; `BEGIN IMMEDIATE` takes the write lock
    up front, so a transaction never reads a value that another writer changes before it
    writes (the driver would otherwise read outside any transaction); None: every statement
    is its own transaction. `sqlite_busy_ms`: how long a statement may block the event loop
    waiting for another process's lock."""
    if is_sqlite(url):
        path = make_url(url).database or ":memory:"
        engine = create_async_engine(url, async_creator=inline_connector(path), **kwargs)
        event.listen(engine.sync_engine, "connect", partial(_sqlite_pragmas, sqlite_busy_ms))
        if sqlite_begin is not None:
            begin = sqlite_begin

            @event.listens_for(engine.sync_engine, "begin")
            def _begin(connection: Any) -> None:
                # On the driver's connection itself: through SQLAlchemy's execution this one
                # statement was ~4% of an STK push's CPU (a push begins two transactions).
                # The kept writer begins on the driver before SQLAlchemy knows (see
                # `Database.transaction`); SQLAlchemy's begin then joins that transaction.
                sqlite = connection.connection.driver_connection.sqlite
                if not sqlite.in_transaction:
                    _begin_on_driver(sqlite, begin)

        return _share_compiled_statements(engine, url, kwargs)
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(url, **kwargs)
    _ping_when_idle(engine)
    return _share_compiled_statements(engine, url, kwargs)


def _begin_on_driver(sqlite: sqlite3.Connection, begin: str) -> None:
    try:
        sqlite.execute(begin)
    except sqlite3.OperationalError as error:  # "locked": retried by the caller
        raise OperationalError(begin, None, error) from error


# A PostgreSQL connection is pinged before use only when it has been idle this long. Pinging
# at every checkout (`pool_pre_ping`) cost as much as the status read itself: with asyncpg a
# ping outside a transaction is BEGIN, a query and ROLLBACK (SELECT 1 per checkout: 0.30 ->
# 0.69 ms, 0.25 -> 0.50 ms of CPU; a push checks out three times). A connection that answered
# within the last second is taken as alive; one that went stale meanwhile (the server
# restarted) is replaced at checkout. One that dies in that second fails the statement it
# was used for, and SQLAlchemy then replaces every pooled connection.
IDLE_PING_S = 1.0
_IDLE_SINCE = "pesagate.idle_since"


def _ping_when_idle(engine: AsyncEngine) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)  # absent: connected just now
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
            return
        try:
            sync.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool replaces the connection and runs this check again on the new one.
            raise DisconnectionError(f"an idle connection did not answer: {error}") from error


# Dialect and compiled-statement cache of the first engine (once connected) to each server,
# per driver and options. SQLAlchemy keys compiled statements by dialect instance, and every
# engine has its own, so each compiled every statement again: the read and write engines of
# a SQLite Database, an engine per CLI command or migration, and each test's gateway (about
# a quarter of the suite's CPU). A dialect holds nothing of one engine's own: its settings come
# from the driver, the URL's query and the engine options, and what it learns when it first
# connects (server version, defaults) from the server; all of them are the key.
_SHARED_DIALECTS: dict[str, list[tuple[Dialect, Any]]] = {}
_PLAIN_OPTION = (str, int, float, bool, type(None), type)
_UNCONNECTED_KEPT = 8  # engines per key that may be the first to connect


def _share_compiled_statements(
    engine: AsyncEngine, url: str, options: dict[str, Any]
) -> AsyncEngine:
    if not all(isinstance(value, _PLAIN_OPTION) for value in options.values()):
        return engine  # an option without a stable identity: nothing to match it by
    parts = make_url(url)
    key = repr(
        (
            parts.drivername,
            parts.host,
            parts.port,
            sorted(parts.query.items()),
            sorted(options.items()),
        )
    )
    sync = engine.sync_engine
    candidates = _SHARED_DIALECTS.setdefault(key, [])
    # Only a dialect that has connected knows its server; until one has, each is a candidate.
    connected = next((c for c in candidates if c[0].server_version_info is not None), None)
    if connected is not None:
        candidates[:] = [connected]
        sync.dialect, sync._compiled_cache = connected
    elif len(candidates) < _UNCONNECTED_KEPT:
        candidates.append((sync.dialect, sync._compiled_cache))
    return engine


def _sqlite_pragmas(busy_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling begins only before writes; we begin ourselves.
    dbapi_connection.isolation_level = None
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
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
    behind an asyncio lock. Reads use a separate engine, one statement per transaction unless
    a snapshot is asked for, and never wait for writers (WAL).
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        self.engine = create_engine(
            url, sqlite_begin=None, sqlite_busy_ms=SQLITE_READ_BUSY_MS, **engine_kwargs
        )
        self.write_engine = (
            create_engine(url, sqlite_begin=_SQLITE_WRITE_BEGIN, **engine_kwargs)
            if self.is_sqlite
            else self.engine
        )
        # Facts that never change once committed (ids of platform ledger accounts), shared by
        # this database's sessions as `session.info[MEMO]`; see `remember_after_commit`.
        self.memo: dict[str, Any] = {}
        info = {MEMO: self.memo}
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        self.write_sessions = async_sessionmaker(
            self.write_engine, expire_on_commit=False, info=info
        )
        self._sqlite_write_lock = asyncio.Lock() if self.is_sqlite else None
        # PostgreSQL: one statement needs no transaction around it. The driver would begin
        # one before it and roll it back when the connection goes back to the pool: two more
        # round trips to the server per status read. (SQLite's read connections already run
        # each statement on its own, see `create_engine`.)
        self._single_statements = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # SQLite: one read connection kept checked out for `read_one()` (see there), and one
        # write session on a kept connection for `transaction()` (see there).
        self._kept_reader: AsyncConnection | None = None
        self._kept_reader_lent = False
        self._kept_writer: _KeptWriter | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self._sqlite_write_lock is None:
            async with self.write_sessions() as session:
                async with session.begin():
                    yield AsyncSession(session)
                _committed(session)
            return
        # SQLite: this process's writers take turns, so one session on one kept connection
        # serves them all. A new session and a pool checkout and checkin per transaction were
        # ~10% of an STK push's CPU (it runs two). After an error both are dropped, and the
        # next transaction starts from a new connection.
        async with self._sqlite_write_lock:
            writer = await self._begin_sqlite_write()
            try:
                yield AsyncSession(writer.session)
                await writer.commit()
            except BaseException:
                await self._drop_kept_writer()
                raise
            _committed(writer.session)

    async def _begin_sqlite_write(self) -> "_KeptWriter":
        """The kept writer, its transaction begun on the driver and holding SQLite's write
        lock (BEGIN IMMEDIATE). Another process's writer is waited for here, asleep, rather
        than inside a statement that would block the loop."""
        deadline = time.monotonic() + SQLITE_WRITE_WAIT_S
        delay_s = 0.001
        while True:
            if self._kept_writer is None:
                self._kept_writer = _KeptWriter.of(
                    await self.write_engine.connect(), self.write_sessions
                )
            try:
                _begin_on_driver(self._kept_writer.sqlite, _SQLITE_WRITE_BEGIN)
                return self._kept_writer
            except OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    await self._drop_kept_writer()
                    raise
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, SQLITE_WRITE_RETRY_MAX_S)

    async def _drop_kept_writer(self) -> None:
        """Roll back and close the kept write session and its connection."""
        writer, self._kept_writer = self._kept_writer, None
        if writer is None:
            return
        writer.session.info.pop(_AFTER_COMMIT, None)
        try:
            await writer.session.close()
        finally:
            await writer.connection.close()  # back to the pool, which rolls back what is open

    def kept_write_connection(self) -> sqlite3.Connection | None:
        """SQLite: the driver connection this process's write transactions run on, while one
        is kept (tests trace the statements it runs)."""
        return self._kept_writer.sqlite if self._kept_writer is not None else None

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[AsyncReadSession]:
        """A read-only unit of work: no lock, nothing committed. Each statement sees the
        latest committed data; `snapshot=True`: every statement sees the same data, for reads
        that must agree with each other (ledger checks, statements with running balances)."""
        async with self.sessions() as session:
            if snapshot:
                await session.execute(text(_SNAPSHOT_BEGIN[self.is_sqlite]))
            yield AsyncReadSession(session)

    @asynccontextmanager
    async def read_one(self) -> AsyncIterator[AsyncConnection]:
        """A connection for Core read statements, each its own transaction: what `read()`
        gives without an ORM session around it (on the status path the session's setup and
        close cost ~15% of the request). Each statement sees the latest committed data and
        waits for no writer; reads that must agree with each other take `read(snapshot=True)`.

        On SQLite one connection stays checked out for these reads and is lent to one caller
        at a time (others take one from the pool): checking a connection out and back in was
        ~55 us, 15% of a status request. Its statements begin no transaction (`create_engine`)
        and SQLAlchemy's adapter reads all of a statement's rows when it executes, so it
        holds no snapshot between callers; after an error it is closed and another is kept."""
        if not self.is_sqlite or self._kept_reader_lent:
            async with self._single_statements.connect() as connection:
                yield connection
            return
        self._kept_reader_lent = True
        try:
            if self._kept_reader is None:
                self._kept_reader = await self.engine.connect()
            yield self._kept_reader
        except BaseException:
            await self._close_kept_reader()
            raise
        finally:
            self._kept_reader_lent = False

    async def first_row(self, statement: AnySelect, params: dict[str, Any]) -> Sequence[Any] | None:
        """The first row of a prebuilt Core SELECT run on its own (`read_one()`), its values
        converted as SQLAlchemy would: on SQLite through the driver (`select_rows`; for the
        status read SQLAlchemy's execution was ~30% of the request, SQLite's own work ~2%).
        `tests/payments/test_invoice_view.py` compares it with SQLAlchemy's path."""
        async with self.read_one() as connection:
            rows = await select_rows(connection, statement, params)
        return rows[0] if rows else None

    async def _close_kept_reader(self) -> None:
        reader, self._kept_reader = self._kept_reader, None
        if reader is not None:
            await reader.close()

    async def dispose(self) -> None:
        await self._close_kept_reader()
        await self._drop_kept_writer()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


_Processor = Callable[[Any], Any] | None
_GIVEN_AT_RUN = object()


@dataclass(frozen=True, slots=True)
class _DriverForm:
    """A prebuilt Core statement as SQLite's driver runs it: its SQL, its parameters in order
    with the processing their types ask for, and the processing of each result column (the
    SELECT's, or an INSERT's or UPDATE's RETURNING)."""

    sql: str
    names: tuple[str, ...]
    values: tuple[Any, ...]  # a value given in the statement itself, or _GIVEN_AT_RUN
    binds: tuple[_Processor, ...]
    results: tuple[_Processor, ...]

    @classmethod
    def of(
        cls, statement: Any, dialect: Dialect, column_keys: list[str] | None = None
    ) -> "_DriverForm | None":
        """None when SQLAlchemy's execution would compute values of its own (a column's
        Python-side callable default, or an onupdate): only it does. A constant default is
        bound as it would bind it."""
        # The `_cached_*_processor` methods are what SQLAlchemy's own execution calls (private
        # but stable across 2.x; the version is pinned, and tests compare the two paths).
        # `column_keys` are the keys of an INSERT's or UPDATE's values, as its execution
        # compiles it.
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        defaults = compiled.insert_prefetch
        if compiled.update_prefetch or not all(column.default.is_scalar for column in defaults):
            return None
        constants = {column.key: column.default.arg for column in defaults}
        names = tuple(compiled.positiontup or ())
        if not constants.keys() <= set(names):
            return None
        parameters = [compiled.binds[name] for name in names]
        values = tuple(
            constants.get(name, _GIVEN_AT_RUN if p.required else p.effective_value)
            for name, p in zip(names, parameters, strict=True)
        )
        binds = tuple(p.type._cached_bind_processor(dialect) for p in parameters)
        columns = (
            statement.selected_columns
            if isinstance(statement, Select)
            else statement.exported_columns
        )
        results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
        return cls(str(compiled), names, values, binds, results)

    def parameters(self, params: dict[str, Any]) -> list[Any]:
        given = [
            params[name] if value is _GIVEN_AT_RUN else value
            for name, value in zip(self.names, self.values, strict=True)
        ]
        return [
            value if bind is None else bind(value)
            for value, bind in zip(given, self.binds, strict=True)
        ]

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if result is None or value is None else result(value)
            for value, result in zip(raw, self.results, strict=True)
        )


_DRIVER_FORMS: dict[tuple[Any, ...], _DriverForm | None] = {}


def _driver_form(
    statement: Any, dialect: Dialect, column_keys: tuple[str, ...] | None = None
) -> _DriverForm | None:
    key = (statement, dialect.name, column_keys)
    if key in _DRIVER_FORMS:
        return _DRIVER_FORMS[key]
    keys = list(column_keys) if column_keys is not None else None
    form = _DRIVER_FORMS[key] = _DriverForm.of(statement, dialect, keys)
    return form


def _on_sqlite(connection: AsyncConnection) -> tuple[sqlite3.Connection, Dialect] | None:
    """The transaction's own sqlite3 connection and its dialect; None on another backend."""
    sync = connection.sync_connection
    if sync is None or sync.dialect.name != "sqlite":
        return None
    inline = sync.connection.driver_connection
    assert isinstance(inline, InlineConnection)
    return inline.sqlite, sync.dialect


async def select_rows(
    connection: AsyncConnection, statement: AnySelect, params: dict[str, Any]
) -> list[Sequence[Any]]:
    """Every row of a prebuilt Core SELECT, run on `connection` (a transaction's own, so it
    sees the transaction's writes, or `read_one()`'s), its values converted as SQLAlchemy
    would. On SQLite straight through the driver, compiled once (see `Database.first_row`:
    SQLAlchemy's execution of a statement costs ~25x SQLite's own work on these indexed
    reads); a driver error falls back to SQLAlchemy's path, which reports it as usual."""
    on_sqlite = _on_sqlite(connection)
    if on_sqlite is not None:
        sqlite, dialect = on_sqlite
        form = _driver_form(statement, dialect)
        assert form is not None  # a SELECT has no Python-side defaults
        with contextlib.suppress(sqlite3.Error):
            cursor = sqlite.execute(form.sql, form.parameters(params))
            try:
                return [form.row(raw) for raw in cursor.fetchall()]
            finally:
                cursor.close()
    return list((await connection.execute(statement, params)).all())


@dataclass(frozen=True, slots=True)
class Written:
    rowcount: int  # rows the statement inserted or changed (-1 for many rows on PostgreSQL)
    returned: Sequence[Sequence[Any]]  # its RETURNING rows, converted as SQLAlchemy would


async def write(
    connection: AsyncConnection, statement: Any, params: dict[str, Any] | list[dict[str, Any]]
) -> Written:
    """Run a prebuilt Core INSERT or UPDATE (one row of values, or many with the same keys)
    on the transaction's connection. On SQLite through the driver, compiled once per set of
    keys, as `select_rows` reads: SQLAlchemy's execution of each of a push's and a callback's
    writes cost several times SQLite's own work. Constant column defaults are bound as
    SQLAlchemy binds them; a statement that would need a callable default or an onupdate
    computed runs through SQLAlchemy (so hot callers give such values, `created_at` say), as
    does every statement on PostgreSQL. A driver error is raised as SQLAlchemy raises it (an
    `IntegrityError` for a broken constraint), and the transaction rolls back as after one.

    Only for statements built once (module constants, or cached like `insert_ignoring`'s):
    each distinct statement object is compiled and kept for the life of the process."""
    on_sqlite = _on_sqlite(connection)
    rows = params if isinstance(params, list) else [params]
    if on_sqlite is not None and rows:
        sqlite, dialect = on_sqlite
        form = _driver_form(statement, dialect, tuple(rows[0]))
        if form is not None:
            return _write_on_driver(sqlite, form, rows, dialect)
    result = await connection.execute(statement, params)
    returned = list(result.all()) if result.returns_rows else []
    return Written(result.rowcount, returned)


def _write_on_driver(
    sqlite: sqlite3.Connection, form: _DriverForm, rows: list[dict[str, Any]], dialect: Dialect
) -> Written:
    try:
        if len(rows) > 1:
            cursor = sqlite.executemany(form.sql, [form.parameters(row) for row in rows])
        else:
            cursor = sqlite.execute(form.sql, form.parameters(rows[0]))
        try:
            returned = [form.row(raw) for raw in cursor.fetchall()]
            return Written(cursor.rowcount, returned)
        finally:
            cursor.close()
    except sqlite3.Error as error:
        raise DBAPIError.instance(form.sql, rows, error, sqlite3.Error, dialect=dialect) from error


@dataclass(frozen=True, slots=True)
class _KeptWriter:
    """SQLite's kept write session and its connection, as SQLAlchemy's and as the driver's.

    Its transactions begin and, when the body ran only driver statements (`write`,
    `select_rows`), commit on the driver: through the ORM session each begin and commit was
    ~10% of an STK push's CPU. Once the body uses the session or SQLAlchemy's connection,
    SQLAlchemy begins a transaction of its own, which joins the driver's (see `create_engine`),
    and the commit goes through it (flushing what is pending first)."""

    connection: AsyncConnection
    sqlite: sqlite3.Connection
    session: _Session

    @classmethod
    def of(
        cls, connection: AsyncConnection, sessions: async_sessionmaker[_Session]
    ) -> "_KeptWriter":
        on_sqlite = _on_sqlite(connection)
        assert on_sqlite is not None
        sqlite = on_sqlite[0]
        session = sessions(bind=connection)
        event.listen(session.sync_session, "after_commit", partial(_commit_driver, sqlite))
        writer = session.info[_KEPT] = cls(connection, sqlite, session)
        return writer

    async def commit(self) -> None:
        session = self.session.sync_session
        # The session is in a transaction once used (an `add` begins one too); instances it
        # keeps outside one are from a commit inside the body.
        if session.in_transaction() or session.identity_map:
            # Commit, then forget every instance (the connection stays), in one hop into
            # SQLAlchemy's greenlet instead of two.
            await self.session.run_sync(_commit_and_close)
        if self.connection.in_transaction():  # begun by a statement `write` left to it
            await self.connection.commit()
        self.sqlite.commit()  # what ran on the driver alone (a no-op once committed above)


def _commit_driver(sqlite: sqlite3.Connection, session: Any) -> None:
    """After SQLAlchemy's commit of the kept session's own transaction (one inside the body:
    no service does one), what ran on the driver alone commits with it. Not after a
    SAVEPOINT's release, which SQLAlchemy reports too: the transaction goes on."""
    if not session.in_nested_transaction():
        sqlite.commit()


def _commit_and_close(session: Any) -> None:
    session.commit()
    session.close()


async def connection_of(session: AnySession | _Session) -> AsyncConnection:
    """The transaction's connection, as `await session.connection()` gives it. On SQLite it
    is the kept writer's, known without asking while its transaction is open: each ask is a
    hop into SQLAlchemy's greenlet (~8 us; a push asked a dozen times), and would begin
    SQLAlchemy's transaction, which the commit then goes through."""
    kept: _KeptWriter | None = session.info.get(_KEPT)
    if kept is not None and kept.sqlite.in_transaction and not session.in_nested_transaction():
        return kept.connection
    # Inside `begin_nested()` the session is asked, so that it sends its SAVEPOINT first.
    return await session.connection()


def remember_after_commit(session: _Session, key: str, value: Any) -> None:
    """Store `value` in the database's memo once this transaction has committed: a value read
    or created inside a transaction that rolls back must not be remembered."""
    session.info.setdefault(_AFTER_COMMIT, []).append((key, value))


def remembered(session: _Session, key: str) -> Any:
    memo = session.info.get(MEMO)
    return memo.get(key) if memo is not None else None


def _committed(session: _Session) -> None:
    memo = session.info.get(MEMO)
    for key, value in session.info.pop(_AFTER_COMMIT, []):
        if memo is not None:
            memo.setdefault(key, value)


async def insert_ignore(session: _Session, model: Any, values: dict[str, Any]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on either backend: concurrent first inserts of one
    natural key both succeed, and one row results."""
    await session.execute(insert_ignoring(session, model).values(**values))


_INSERTS_IGNORING: dict[tuple[str, Any, str | tuple[str, ...] | None], Any] = {}


def insert_ignoring(
    session: _Session, model: Any, returning: str | tuple[str, ...] | None = None
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the session's backend (RETURNING the named column
    or columns, which come back only for a row inserted); built once per backend and model."""
    dialect = session.get_bind().dialect.name
    key = (dialect, model, returning)
    statement = _INSERTS_IGNORING.get(key)
    if statement is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(model).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(model).on_conflict_do_nothing()
        if isinstance(returning, str):
            statement = statement.returning(getattr(model, returning))
        elif returning is not None:
            statement = statement.returning(*(getattr(model, name) for name in returning))
        _INSERTS_IGNORING[key] = statement
    return statement
