"""`Database.read_one()`: single Core reads that always see the latest commit, on both
databases, including through the connection SQLite keeps for them between callers."""

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import func, select

from pesagate.db import Database, select_rows
from pesagate.kit.clock import utc_now
from pesagate.models import Job
from pesagate.worker.jobs import schedule

COUNT = select(func.count()).select_from(Job).where(Job.kind == "read-one-test")


async def count(db: Database) -> int:
    async with db.read_one() as connection:
        return int((await connection.execute(COUNT)).scalar_one())


async def add(db: Database, key: str) -> None:
    async with db.transaction() as session:
        await schedule(session, "read-one-test", key, utc_now(), {})


async def test_each_read_sees_what_was_committed_before_it(db):
    assert await count(db) == 0
    for expected in (1, 2, 3):
        await add(db, f"job-{expected}")
        assert await count(db) == expected


async def test_a_read_inside_another_gets_its_own_connection(db):
    async with db.read_one() as outer:
        async with db.read_one() as inner:
            assert inner is not outer
            await add(db, "between")
            assert (await inner.execute(COUNT)).scalar_one() == 1
        assert (await outer.execute(COUNT)).scalar_one() == 1
    assert await count(db) == 1


async def test_an_error_inside_a_read_leaves_the_next_read_working(db):
    with pytest.raises(ZeroDivisionError):
        async with db.read_one() as connection:
            await connection.execute(COUNT)
            _ = 1 / 0
    await add(db, "after the error")
    assert await count(db) == 1


async def test_concurrent_reads_all_answer(db):
    await add(db, "one")
    assert await asyncio.gather(*(count(db) for _ in range(50))) == [1] * 50


async def test_first_row_sees_each_commit_also_while_the_kept_reader_is_lent(db):
    """On SQLite `first_row` runs on the kept reader's driver connection when it is free,
    and through SQLAlchemy on a pooled one while it is lent."""
    for expected in (1, 2):
        await add(db, f"job-{expected}")
        assert (await db.first_row(COUNT, {}))[0] == expected
    async with db.read_one():
        await add(db, "job-3")
        assert (await db.first_row(COUNT, {}))[0] == 3
    assert (await db.first_row(COUNT, {}))[0] == 3


JOBS = select(Job.__table__).where(Job.kind == "read-one-test").order_by(Job.id)


async def test_select_rows_in_a_transaction_sees_its_writes_as_sqlalchemy_reads_them(db):
    """`select_rows` runs on the transaction's own connection (on SQLite through the driver):
    it sees what the transaction wrote before it commits, with every column converted as
    SQLAlchemy's own execution converts it (datetimes, NULLs)."""
    await add(db, "committed")
    async with db.transaction() as session:
        await schedule(session, "read-one-test", "uncommitted", utc_now(), {"n": 1})
        connection = await session.connection()
        rows = await select_rows(connection, JOBS, {})
        assert [row[2] for row in rows] == ["committed", "uncommitted"]
        assert [tuple(row) for row in rows] == [
            tuple(row) for row in (await connection.execute(JOBS)).all()
        ]
        assert all(isinstance(row[4], datetime) for row in rows)
