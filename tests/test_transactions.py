"""`Database.transaction()`: on SQLite this process's writers share one session on one kept
connection. Nothing may carry over from one transaction to the next: not instances, not
uncommitted writes after an error or a cancellation."""

import asyncio

import pytest
from sqlalchemy import func, insert, select

from pesagate.db import Database, connection_of, write
from pesagate.kit.clock import utc_now
from pesagate.models import Job
from pesagate.worker.jobs import add_job

KIND = "transaction-test"
JOBS = select(func.count()).select_from(Job).where(Job.kind == KIND)


async def count(db: Database) -> int:
    async with db.read_one() as connection:
        return int((await connection.execute(JOBS)).scalar_one())


async def add(db: Database, key: str) -> int:
    async with db.transaction() as session:
        await add_job(session, KIND, key, utc_now(), {})
        job_pk = await session.scalar(select(Job.id).where(Job.key == key))
        assert job_pk is not None
        return job_pk


async def test_instances_do_not_outlive_their_transaction(db):
    job_pk = await add(db, "loaded")
    async with db.transaction() as session:
        first = await session.get(Job, job_pk)
        assert first is not None
    async with db.transaction() as session:
        assert not list(session.sync_session.identity_map.values())
        again = await session.get(Job, job_pk)
    assert again is not None and again is not first


async def test_an_error_rolls_back_and_the_next_transaction_starts_clean(db):
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as session:
            await add_job(session, KIND, "rolled back", utc_now(), {})
            _ = 1 / 0
    await add(db, "after the error")
    assert await count(db) == 1


async def test_a_cancelled_transaction_rolls_back_and_the_next_one_works(db):
    inside = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as session:
            await add_job(session, KIND, "cancelled", utc_now(), {})
            inside.set()
            await asyncio.sleep(60)  # cancelled here, with its write not yet committed

    task = asyncio.create_task(writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await add(db, "after the cancellation")
    assert await count(db) == 1


async def test_core_writes_after_a_commit_inside_the_body_are_in_the_next_transaction(db):
    if not db.is_sqlite:
        pytest.skip("on PostgreSQL the transaction refuses a commit inside it")
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as session:
            await add_job(session, KIND, "committed", utc_now(), {})
            await session.commit()
            # `connection_of` must not hand out the kept connection outside a transaction:
            # SQLite would run this insert on its own, committed at once.
            await add_job(session, KIND, "rolled back", utc_now(), {})
            _ = 1 / 0
    assert await count(db) == 1


async def driver_write(session, key: str) -> None:
    """What the hot paths do: a Core write on the transaction's connection (on SQLite, the
    driver's, with no SQLAlchemy transaction begun)."""
    await write(await connection_of(session), insert(Job), new_job(key))


def new_job(key: str) -> dict:
    now = utc_now()
    return {"kind": KIND, "key": key, "run_at": now, "created_at": now}


async def test_driver_writes_alone_commit(db):
    async with db.transaction() as session:
        await driver_write(session, "first")
        await driver_write(session, "second")
    assert await count(db) == 2


async def test_driver_writes_then_a_pending_instance_commit_together(db):
    async with db.transaction() as session:
        await driver_write(session, "on the driver")
        session.add(Job(**new_job("added, flushed only by the commit")))
    assert await count(db) == 2


async def test_driver_writes_the_session_reads_are_in_one_transaction_and_roll_back_together(db):
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as session:
            await driver_write(session, "on the driver")
            seen = await session.scalar(select(func.count()).where(Job.kind == KIND))
            assert seen == 1  # the session's statements see the driver's writes
            session.add(Job(**new_job("by the session")))
            await session.flush()
            await driver_write(session, "on the driver again")
            _ = 1 / 0
    assert await count(db) == 0


async def test_a_write_through_sqlalchemys_connection_commits_with_the_drivers(db):
    async with db.transaction() as session:
        await driver_write(session, "on the driver")
        # A statement `write` leaves to SQLAlchemy (a callable default) begins its
        # transaction on the same connection; the commit must end both.
        connection = await connection_of(session)
        await connection.execute(insert(Job).values(new_job("by SQLAlchemy")))
        await driver_write(session, "after it")
    assert await count(db) == 3
    assert not connection.in_transaction()  # SQLAlchemy's view agrees with the driver's
    await add(db, "the next transaction")
    assert await count(db) == 4


async def test_a_released_savepoint_does_not_end_the_transaction(db):
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as session:
            await driver_write(session, "before")
            async with session.begin_nested():
                session.add(Job(**new_job("in the savepoint")))
            await driver_write(session, "after")
            _ = 1 / 0
    assert await count(db) == 0


async def test_driver_writes_inside_a_savepoint_roll_back_with_it(db):
    async with db.transaction() as session:
        await driver_write(session, "kept")
        nested = await session.begin_nested()
        await driver_write(session, "rolled back with the savepoint")
        await nested.rollback()
        await driver_write(session, "kept too")
    assert await count(db) == 2
