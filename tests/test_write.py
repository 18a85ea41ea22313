"""`db.write`: prebuilt INSERTs and UPDATEs, on SQLite through the driver, must store and
return exactly what SQLAlchemy's own execution would, and fail as it would."""

from datetime import timedelta

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pesagate.db import Database, write
from pesagate.kit.clock import utc_now
from pesagate.models import Job

KIND = "write-test"
NEW_JOB = insert(Job).returning(Job.id, Job.run_at, Job.attempts, Job.payload, Job.created_at)
PLAIN_NEW_JOB = insert(Job)
RESCHEDULE = (
    update(Job)
    .where(Job.kind == bindparam("of_kind"))
    .values(run_at=bindparam("new_run_at"), attempts=Job.attempts + 1)
    .returning(Job.key, Job.run_at, Job.attempts)
)
JOBS = select(func.count()).select_from(Job).where(Job.kind == KIND)


def job(key: str) -> dict:
    now = utc_now()
    return {"kind": KIND, "key": key, "run_at": now + timedelta(minutes=5), "created_at": now}


async def count(db: Database) -> int:
    async with db.read_one() as connection:
        return int((await connection.execute(JOBS)).scalar_one())


async def test_an_insert_returns_and_stores_what_sqlalchemy_would(db):
    given = job("returned") | {"payload": '{"n": 1}'}
    async with db.transaction() as session:
        connection = await session.connection()
        written = await write(connection, NEW_JOB, given)
        # The same statement through SQLAlchemy's execution, for comparison.
        through_sqlalchemy = (await connection.execute(NEW_JOB, job("compared"))).one()
    assert written.rowcount == 1
    [(job_pk, run_at, attempts, payload, created_at)] = written.returned
    assert (run_at, attempts, payload, created_at) == (
        given["run_at"],
        0,  # the column's constant default, bound as SQLAlchemy binds it
        '{"n": 1}',
        given["created_at"],
    )
    assert [type(value) for value in written.returned[0]] == [
        type(value) for value in through_sqlalchemy
    ]
    async with db.transaction() as session:
        stored = await session.get(Job, job_pk)
    assert stored is not None
    assert (stored.run_at, stored.attempts, stored.failures, stored.created_at) == (
        given["run_at"],
        0,
        0,
        given["created_at"],
    )


async def test_a_callable_default_is_left_to_sqlalchemy(db):
    given = job("defaulted")
    del given["created_at"]  # its default is utc_now(): only SQLAlchemy computes it
    before = utc_now()
    async with db.transaction() as session:
        written = await write(await session.connection(), NEW_JOB, given)
    created_at = written.returned[0][4]
    assert created_at is not None and created_at >= before


async def test_many_rows_then_an_update_that_counts_and_returns_them(db):
    async with db.transaction() as session:
        connection = await session.connection()
        added = await write(connection, PLAIN_NEW_JOB, [job(f"many-{n}") for n in range(3)])
        later = utc_now() + timedelta(hours=1)
        moved = await write(connection, RESCHEDULE, {"of_kind": KIND, "new_run_at": later})
    assert added.returned == []  # (asyncpg does not count the rows of many)
    assert moved.rowcount == 3
    assert sorted(moved.returned) == [(f"many-{n}", later, 1) for n in range(3)]
    assert await count(db) == 3


async def test_a_broken_constraint_is_sqlalchemys_integrity_error_and_rolls_back(db):
    async with db.transaction() as session:
        await write(await session.connection(), PLAIN_NEW_JOB, job("taken"))
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            connection = await session.connection()
            await write(connection, PLAIN_NEW_JOB, job("another"))
            await write(connection, PLAIN_NEW_JOB, job("taken"))
    assert await count(db) == 1  # the first insert of the failed transaction is gone too
