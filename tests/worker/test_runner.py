"""The durable job runner: claiming, finishing, retrying and leases, on both databases."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from pesagate import migrate
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Job
from pesagate.worker.jobs import cancel, schedule
from pesagate.worker.runner import ClaimedJob, Handler, RunAgainAt, Worker, failure_backoff_s

KIND = "record"


class Recorder:
    """A real handler: records every job it is given and answers with `outcomes` in turn
    (None = done, a RunAgainAt, or an exception to raise); after them it answers None."""

    def __init__(self, *outcomes: RunAgainAt | Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[ClaimedJob] = []

    async def __call__(self, job: ClaimedJob) -> RunAgainAt | None:
        self.calls.append(job)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def eventually(
    condition: Callable[[], Awaitable[Any]], timeout_s: float = 10.0, what: str = ""
) -> Any:
    """Await `condition()` until it is truthy and return its value; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")
        await asyncio.sleep(0.02)


@pytest.fixture
def migrated_url(db_url: str) -> str:
    asyncio.run(migrate.upgrade(db_url))
    return db_url


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    database = Database(migrated_url)
    yield database
    await database.dispose()


async def add(
    db: Database,
    key: str,
    run_at: datetime,
    kind: str = KIND,
    payload: dict[str, Any] | None = None,
) -> None:
    async with db.transaction() as session:
        await schedule(session, kind, key, run_at, payload or {"key": key})


async def jobs(db: Database) -> list[Job]:
    async with db.read() as session:
        return list((await session.scalars(select(Job).order_by(Job.id))).all())


async def job(db: Database, key: str) -> Job | None:
    async with db.read() as session:
        return await session.scalar(select(Job).where(Job.key == key))


def worker(db: Database, handlers: dict[str, Handler], **kwargs: Any) -> Worker:
    kwargs.setdefault("name", "test-worker")
    return Worker(db, handlers, **kwargs)


async def test_a_due_job_runs_once_and_is_deleted_while_a_future_job_waits(db):
    handler = Recorder()
    await add(db, "due", utc_now() - timedelta(seconds=1), payload={"invoice": 7})
    later = utc_now() + timedelta(hours=1)
    await add(db, "later", later)
    runner = worker(db, {KIND: handler})

    assert await runner.run_once() == 1
    [call] = handler.calls
    assert (call.kind, call.key, call.payload, call.attempts) == (KIND, "due", {"invoice": 7}, 1)
    [waiting] = await jobs(db)
    assert (waiting.key, waiting.run_at, waiting.locked_by, waiting.attempts) == (
        "later",
        later,
        None,
        0,
    )

    assert await runner.run_once() == 0
    assert len(handler.calls) == 1
    assert [j.key for j in await jobs(db)] == ["later"]


async def test_the_run_loop_picks_up_jobs_scheduled_while_it_runs(db):
    handler = Recorder()
    runner = worker(db, {KIND: handler}, poll_s=0.05)
    stop = asyncio.Event()
    loop = asyncio.create_task(runner.run(stop))
    try:
        await add(db, "one", utc_now())
        await add(db, "two", utc_now())

        async def both_done() -> bool:
            return len(handler.calls) == 2 and not await jobs(db)

        await eventually(both_done, what="both jobs to run and be deleted")
    finally:
        stop.set()
        await asyncio.wait_for(loop, timeout=5)
    assert sorted(call.key for call in handler.calls) == ["one", "two"]


async def test_run_again_at_keeps_the_row_unlocked_until_then_and_runs_it_again(db):
    again_at = utc_now() + timedelta(seconds=0.4)
    handler = Recorder(RunAgainAt(again_at), None)
    await add(db, "poll", utc_now())
    runner = worker(db, {KIND: handler})

    assert await runner.run_once() == 1
    row = await job(db, "poll")
    assert row is not None
    assert (row.run_at, row.locked_by, row.attempts, row.last_error) == (again_at, None, 1, None)
    assert await runner.run_once() == 0  # not due before `again_at`

    await eventually(runner.run_once, what="the job to be due again")
    assert utc_now() >= again_at
    assert [call.attempts for call in handler.calls] == [1, 2]
    assert await jobs(db) == []


async def test_a_failing_handler_keeps_the_row_with_the_error_and_backs_off(db):
    handler = Recorder(RuntimeError("Daraja is down"), ValueError("still down"))
    await add(db, "flaky", utc_now())
    runner = worker(db, {KIND: handler})

    before = utc_now()
    assert await runner.run_once() == 1
    after = utc_now()
    row = await job(db, "flaky")
    assert row is not None
    assert (row.attempts, row.locked_by) == (1, None)
    assert row.last_error == "RuntimeError: Daraja is down"
    backoff = timedelta(seconds=failure_backoff_s(1))
    assert before + backoff <= row.run_at <= after + backoff
    assert await runner.run_once() == 0  # backing off

    # Make it due again rather than wait out the backoff: the second failure backs off longer.
    async with db.transaction() as session:
        await session.execute(update(Job).where(Job.key == "flaky").values(run_at=utc_now()))
    before = utc_now()
    assert await runner.run_once() == 1
    after = utc_now()
    row = await job(db, "flaky")
    assert row is not None
    assert (row.attempts, row.locked_by) == (2, None)
    assert row.last_error == "ValueError: still down"
    backoff = timedelta(seconds=failure_backoff_s(2))
    assert backoff > timedelta(seconds=failure_backoff_s(1))
    assert before + backoff <= row.run_at <= after + backoff
    assert [call.attempts for call in handler.calls] == [1, 2]


async def test_an_unknown_job_kind_is_a_failure_and_the_row_is_kept(db):
    handler = Recorder()
    await add(db, "mystery", utc_now(), kind="no-such-kind")
    runner = worker(db, {KIND: handler})

    before = utc_now()
    assert await runner.run_once() == 1
    row = await job(db, "mystery")
    assert row is not None
    assert (row.kind, row.attempts, row.locked_by) == ("no-such-kind", 1, None)
    assert row.last_error is not None
    assert "LookupError" in row.last_error and "no-such-kind" in row.last_error
    assert row.run_at >= before + timedelta(seconds=failure_backoff_s(1))
    assert handler.calls == []


async def test_schedule_keeps_one_row_per_key_and_only_moves_it_earlier(db):
    now = utc_now()
    await add(db, "k", now + timedelta(seconds=60), payload={"n": 1})
    await add(db, "k", now + timedelta(seconds=120), payload={"n": 2})
    [row] = await jobs(db)
    assert (row.key, row.run_at, row.payload) == ("k", now + timedelta(seconds=60), '{"n":1}')

    await add(db, "k", now + timedelta(seconds=30), payload={"n": 3})
    [row] = await jobs(db)
    assert (row.key, row.run_at, row.payload) == ("k", now + timedelta(seconds=30), '{"n":1}')

    # Both calls in one transaction also leave one row.
    async with db.transaction() as session:
        await schedule(session, KIND, "k2", now + timedelta(seconds=10), {})
        await schedule(session, KIND, "k2", now + timedelta(seconds=5), {})
    assert [(j.key, j.run_at) for j in await jobs(db)] == [
        ("k", now + timedelta(seconds=30)),
        ("k2", now + timedelta(seconds=5)),
    ]

    async with db.transaction() as session:
        await cancel(session, "k")
    assert [j.key for j in await jobs(db)] == ["k2"]
    async with db.transaction() as session:
        await cancel(session, "k")  # cancelling what is gone is harmless
        await cancel(session, "k2")
    assert await jobs(db) == []


async def test_schedule_does_not_move_a_claimed_job(db):
    await add(db, "busy", utc_now())
    runner = worker(db, {KIND: Recorder()}, lease_s=60)
    [claimed] = await runner.claim()
    await add(db, "busy", utc_now())
    [row] = await jobs(db)
    assert (row.locked_by, row.run_at) == ("test-worker", claimed.lease_until)


async def test_concurrent_workers_never_claim_the_same_job(migrated_url):
    total, workers = 200, 5
    setup = Database(migrated_url)
    now = utc_now()
    async with setup.transaction() as session:
        for n in range(total):
            await schedule(session, KIND, f"job-{n}", now - timedelta(milliseconds=n), {"n": n})
    expected_ids = {j.id for j in await jobs(setup)}
    assert len(expected_ids) == total

    # One Database per worker, as separate processes would have.
    databases = [Database(migrated_url) for _ in range(workers)]
    runners = [
        Worker(databases[i], {KIND: Recorder()}, name=f"w{i}", batch=10) for i in range(workers)
    ]
    claimed: dict[str, list[int]] = {runner.name: [] for runner in runners}

    async def claim_until_empty(runner: Worker) -> None:
        while batch := await runner.claim():
            claimed[runner.name].extend(job.id for job in batch)
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(claim_until_empty(runner) for runner in runners))
        all_ids = [job_id for ids in claimed.values() for job_id in ids]
        assert len(all_ids) == len(set(all_ids)), "a job was claimed twice"
        assert set(all_ids) == expected_ids
        assert sum(1 for ids in claimed.values() if ids) > 1, f"no concurrency: {claimed}"
        # Every row is locked by the worker that got it, exactly once (attempts == 1).
        owner = {job_id: name for name, ids in claimed.items() for job_id in ids}
        rows = await jobs(setup)
        assert {(row.id, row.locked_by, row.attempts) for row in rows} == {
            (job_id, name, 1) for job_id, name in owner.items()
        }
    finally:
        for database in [setup, *databases]:
            await database.dispose()


async def test_a_crashed_workers_job_is_taken_over_after_its_lease(migrated_url):
    db_a, db_b = Database(migrated_url), Database(migrated_url)
    handler = Recorder()
    crashed = Worker(db_a, {KIND: handler}, name="A", lease_s=0.3)
    rescuer = Worker(db_b, {KIND: handler}, name="B", lease_s=60)
    try:
        await add(db_a, "orphan", utc_now())
        [held] = await crashed.claim()
        assert await rescuer.claim() == []  # A's lease still holds
        row = await job(db_b, "orphan")
        assert row is not None
        assert (row.locked_by, row.run_at, row.attempts) == ("A", held.lease_until, 1)

        [taken] = await eventually(rescuer.claim, what="A's lease to run out")
        assert utc_now() >= held.lease_until
        assert (taken.id, taken.attempts) == (held.id, 2)

        # A wakes up late: it runs its copy, then tries to finish and to release it. Neither
        # may touch the row B now owns.
        await crashed._run(held)
        await crashed._finish(held)
        await crashed._release(held, utc_now(), error="late")
        row = await job(db_b, "orphan")
        assert row is not None
        assert (row.id, row.locked_by, row.run_at, row.attempts, row.last_error) == (
            held.id,
            "B",
            taken.lease_until,
            2,
            None,
        )

        await rescuer._run(taken)
        assert await jobs(db_b) == []
        assert [(call.key, call.attempts) for call in handler.calls] == [
            ("orphan", 1),
            ("orphan", 2),
        ]
    finally:
        await db_a.dispose()
        await db_b.dispose()
