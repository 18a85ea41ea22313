"""The durable job runner: claiming, finishing, retrying and leases, on both databases."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import event, select, update

from pesagate.db import Database, ping
from pesagate.kit.clock import utc_now
from pesagate.models import Job
from pesagate.worker.jobs import cancel, schedule
from pesagate.worker.runner import ClaimedJob, Handler, RunAgainAt, Worker, failure_backoff_s
from tests.fixtures.clock import AheadClock

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


async def add(
    db: Database,
    key: str,
    run_at: datetime,
    kind: str = KIND,
    payload: dict[str, Any] | None = None,
    lane: str | None = None,
) -> None:
    async with db.transaction() as session:
        await schedule(session, kind, key, run_at, payload or {"key": key}, lane)


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
    now = utc_now()
    again_at = now + timedelta(seconds=30)
    handler = Recorder(RunAgainAt(again_at), None)
    await add(db, "poll", now)
    runner = worker(db, {KIND: handler}, clock=lambda: now)  # the worker's clock, by hand

    assert await runner.run_once() == 1
    row = await job(db, "poll")
    assert row is not None
    assert (row.run_at, row.locked_by, row.attempts, row.last_error) == (again_at, None, 1, None)
    now = again_at - timedelta(milliseconds=1)
    assert await runner.run_once() == 0  # not due before `again_at`

    now = again_at
    assert await runner.run_once() == 1
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


async def test_cancel_takes_a_job_the_same_transaction_added_or_moved(db):
    """`cancel` deletes with a statement of its own, not through the session: a job this
    transaction added, or read and moved, must not be written back."""
    now = utc_now()
    await add(db, "read", now + timedelta(seconds=60))
    async with db.transaction() as session:
        await schedule(session, KIND, "added", now, {})  # inserted in this transaction
        await schedule(session, KIND, "read", now, {})  # read, then moved earlier
        await cancel(session, "added")
        await cancel(session, "read")
        await schedule(session, KIND, "kept", now, {})
    assert [j.key for j in await jobs(db)] == ["kept"]


async def test_schedule_does_not_move_a_claimed_job(db):
    await add(db, "busy", utc_now())
    runner = worker(db, {KIND: Recorder()}, lease_s=60)
    [claimed] = await runner.claim()
    await add(db, "busy", utc_now())
    [row] = await jobs(db)
    assert (row.locked_by, row.run_at) == ("test-worker", claimed.lease_until)


async def test_concurrent_workers_never_claim_the_same_job(db_url):
    total, workers = 200, 5
    setup = Database(db_url)
    now = utc_now()
    async with setup.transaction() as session:
        for n in range(total):
            await schedule(session, KIND, f"job-{n}", now - timedelta(milliseconds=n), {"n": n})
    expected_ids = {j.id for j in await jobs(setup)}
    assert len(expected_ids) == total

    # One Database per worker, as separate processes would have.
    databases = [Database(db_url) for _ in range(workers)]
    runners = [
        Worker(databases[i], {KIND: Recorder()}, name=f"w{i}", concurrency=10)
        for i in range(workers)
    ]
    claimed: dict[str, list[int]] = {runner.name: [] for runner in runners}
    # Connected before the race: otherwise the first worker to connect could claim all 200
    # jobs while the others still open their first connection (seen once in CI).
    await asyncio.gather(*(ping(database.engine) for database in databases))

    def claimed_so_far() -> int:
        return sum(len(ids) for ids in claimed.values())

    async def claim_until_empty(runner: Worker) -> None:
        # A worker whose claim found every oldest due job locked by another's claim in flight
        # gets nothing (SKIP LOCKED) and tries again, as the worker loop would after its poll:
        # stopping at the first empty claim left the race to whoever claimed first.
        while claimed_so_far() < total:
            claimed[runner.name].extend(job.id for job in await runner.claim())
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(claim_until_empty(runner) for runner in runners)), 60
        )
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


async def test_a_crashed_workers_job_is_taken_over_after_its_lease(db_url):
    db_a, db_b = Database(db_url), Database(db_url)
    handler = Recorder()
    # The clock is moved past A's lease instead of the test waiting for it to run out.
    clock = AheadClock()
    crashed = Worker(db_a, {KIND: handler}, name="A", lease_s=60, clock=clock)
    rescuer = Worker(db_b, {KIND: handler}, name="B", lease_s=60, clock=clock)
    try:
        await add(db_a, "orphan", utc_now())
        [held] = await crashed.claim()
        assert await rescuer.claim() == []  # A's lease still holds
        row = await job(db_b, "orphan")
        assert row is not None
        assert (row.locked_by, row.run_at, row.attempts) == ("A", held.lease_until, 1)

        clock.advance_past(held.lease_until)
        [taken] = await rescuer.claim()
        assert (taken.id, taken.attempts, taken.failures) == (held.id, 2, 1)  # A's lease ran out

        # A wakes up late: it does not start a job whose lease ran out, and its attempts to
        # finish or release it may not touch the row B now owns.
        await crashed._run(held)
        await crashed._finish(held)
        await crashed._release(held, utc_now(), error="late", failures=None)
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
        assert [(call.key, call.attempts) for call in handler.calls] == [("orphan", 2)]
    finally:
        await db_a.dispose()
        await db_b.dispose()


class Gate:
    """A handler that blocks every job until `open()`, recording which ones are inside."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.inside: set[str] = set()
        self.most_inside: dict[str | None, int] = {}
        self.calls: list[ClaimedJob] = []
        self.cancelled: list[str] = []

    async def __call__(self, job: ClaimedJob) -> None:
        self.calls.append(job)
        self.inside.add(job.key)
        same_lane = sum(
            1 for call in self.calls if call.lane == job.lane and call.key in self.inside
        )
        self.most_inside[job.lane] = max(self.most_inside.get(job.lane, 0), same_lane)
        try:
            await self.opened.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job.key)
            raise
        finally:
            self.inside.discard(job.key)

    def open(self) -> None:
        self.opened.set()


async def running_loop(runner: Worker) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(runner.run(stop))


async def stop_loop(stop: asyncio.Event, loop: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(loop, timeout=15)


async def test_a_slow_job_does_not_hold_up_jobs_due_after_it(db):
    slow, fast = Gate(), Recorder()
    runner = worker(db, {"slow": slow, KIND: fast}, poll_s=0.05, concurrency=4)
    await add(db, "hangs", utc_now(), kind="slow")
    stop, loop = await running_loop(runner)
    try:
        await eventually(lambda: _true(slow.inside), what="the slow job to start")
        for n in range(6):  # more than the free slots: they run as slots free up
            await add(db, f"quick-{n}", utc_now())

        async def quick_ones_done() -> bool:
            return len(fast.calls) == 6 and [j.key for j in await jobs(db)] == ["hangs"]

        await eventually(quick_ones_done, what="the quick jobs, while the slow one runs")
        assert slow.inside == {"hangs"}
    finally:
        slow.open()
        await stop_loop(stop, loop)
    assert await jobs(db) == []


async def test_one_lane_takes_at_most_its_slots_and_the_rest_wait_unharmed(db):
    gate, other = Gate(), Recorder()
    runner = worker(db, {KIND: gate, "other": other}, poll_s=0.05, concurrency=6, lane_slots=2)
    for n in range(5):
        async with db.transaction() as session:
            await schedule(session, KIND, f"slow-{n}", utc_now(), {}, lane="endpoint:1")
    stop, loop = await running_loop(runner)
    try:
        await eventually(lambda: _true(len(gate.inside) == 2), what="two jobs of the lane")
        async with db.transaction() as session:
            await schedule(session, "other", "elsewhere", utc_now(), {}, lane="endpoint:2")
        await eventually(lambda: _true(other.calls), what="the other lane's job")
        assert len(gate.inside) == 2
        waiting = [row for row in await jobs(db) if row.locked_by is None]
        assert len(waiting) == 3  # not claimed past the lane's room: no runs, no failures
        assert {(row.attempts, row.failures, row.last_error) for row in waiting} == {(0, 0, None)}
    finally:
        gate.open()
        await eventually(lambda: _true(len(gate.calls) == 5), what="the lane to drain")
        await stop_loop(stop, loop)
    assert gate.most_inside == {"endpoint:1": 2}
    assert await jobs(db) == []


async def test_a_lane_group_takes_its_slots_and_each_of_its_lanes_half(db):
    # A business (group b:1) with three hanging endpoints and a fourth one that answers: the
    # group never holds more than its 4 slots, one endpoint never more than 2, so the fourth
    # endpoint and another business still run.
    gate, other = Gate(), Recorder()
    runner = worker(db, {KIND: gate, "other": other}, poll_s=0.05, concurrency=8, lane_slots=4)
    for endpoint in range(3):
        for n in range(3):
            async with db.transaction() as session:
                lane = f"b:1/e:{endpoint}"
                await schedule(session, KIND, f"hang-{endpoint}-{n}", utc_now(), {}, lane=lane)
    stop, loop = await running_loop(runner)
    try:
        await eventually(lambda: _true(len(gate.inside) == 4), what="the group's four slots")
        async with db.transaction() as session:
            await schedule(session, "other", "same-business", utc_now(), {}, lane="b:1/e:9")
            await schedule(session, "other", "elsewhere", utc_now(), {}, lane="b:2/e:1")
        await eventually(lambda: _true(len(other.calls) == 1), what="the other business's job")
        assert len(gate.inside) == 4  # the group is full: its fourth endpoint waits its turn
        assert max(gate.most_inside.values()) == 2
    finally:
        gate.open()
        await eventually(lambda: _true(len(other.calls) == 2), what="the fourth endpoint's job")
        await eventually(lambda: _true(len(gate.calls) == 9), what="the group to drain")
        await stop_loop(stop, loop)
    assert await jobs(db) == []


async def test_a_lanes_backlog_never_takes_the_claim_from_younger_jobs_of_other_lanes(db):
    # A receiver that hangs while its events pile up: 20 due jobs of one endpoint, all older
    # than one job of another business and one of the same business's other endpoint. A claim
    # of 4 takes the backlog's share (half the group's 4 slots) and both younger jobs, never
    # 4 of the backlog; while the backlog's share runs, the next claim takes none of it.
    runner = worker(db, {KIND: Recorder()}, concurrency=8, lane_slots=4)
    long_ago = utc_now() - timedelta(minutes=5)
    for n in range(20):
        await add(db, f"hung-{n:02}", long_ago + timedelta(seconds=n), lane="b:1/e:1")
    await add(db, "same-business", utc_now(), lane="b:1/e:2")
    await add(db, "elsewhere", utc_now(), lane="b:2/e:1")
    await add(db, "laneless", utc_now())

    claimed = sorted(job.key for job in await runner.claim(4))
    assert claimed == ["elsewhere", "hung-00", "hung-01", "same-business"]

    runner._lanes.update(["b:1", "b:1/e:1", "b:1", "b:1/e:1"])  # those two hung jobs run
    assert [job.key for job in await runner.claim(4)] == ["laneless"]


async def test_a_job_that_keeps_failing_is_dead_after_max_failures(db, caplog):
    handler = Recorder(*(RuntimeError(f"boom {n}") for n in range(3)))
    runner = worker(db, {KIND: handler}, max_failures=3)
    await add(db, "poison", utc_now())
    dead_before = _sample("pesagate_job_runs_total", kind=KIND, outcome="dead")
    for attempt in range(1, 4):
        assert await runner.run_once() == 1
        row = await job(db, "poison")
        assert row is not None and row.failures == attempt
        await _make_due(db, "poison")
    assert row.dead_at is not None and row.locked_by is None
    assert row.last_error == "RuntimeError: boom 2"
    assert await runner.run_once() == 0  # dead jobs are never claimed
    assert len(handler.calls) == 3
    assert _sample("pesagate_job_runs_total", kind=KIND, outcome="dead") == dead_before + 1
    assert _sample("pesagate_jobs_dead", kind=KIND) == 1
    assert "Traceback" in caplog.text and "RuntimeError: boom 0" in caplog.text

    # Scheduled again by the code that owns it (e.g. a webhook replay): alive, clean slate.
    await add(db, "poison", utc_now())
    row = await job(db, "poison")
    assert row is not None and (row.dead_at, row.failures, row.locked_by) == (None, 0, None)
    assert await runner.run_once() == 1
    assert await jobs(db) == []


async def test_run_again_resets_the_failure_count(db):
    handler = Recorder(RuntimeError("once"), RunAgainAt(utc_now()), RuntimeError("twice"))
    runner = worker(db, {KIND: handler}, max_failures=2)
    await add(db, "recovers", utc_now())
    for _ in range(3):
        assert await runner.run_once() == 1
        await _make_due(db, "recovers")
    row = await job(db, "recovers")
    assert row is not None and (row.failures, row.dead_at) == (1, None)


async def test_a_job_past_its_deadline_is_cancelled_and_counts_as_a_failure(db):
    gate = Gate()
    runner = worker(db, {KIND: gate}, job_timeout_s=0.3, lease_s=60)
    await add(db, "stuck", utc_now())
    before = utc_now()
    assert await runner.run_once() == 1  # returns: the deadline cancelled the handler
    assert gate.cancelled == ["stuck"]
    row = await job(db, "stuck")
    assert row is not None
    assert (row.failures, row.locked_by) == (1, None)
    assert row.last_error is not None and "ran longer than 0.3 s" in row.last_error
    assert row.run_at >= before + timedelta(seconds=failure_backoff_s(1))


async def test_a_long_job_keeps_its_lease_and_never_runs_in_two_workers(db_url):
    """A renews its lease while the job runs; B, whose clock is past each lease A held before
    its latest renewal, still cannot take the job, because the row holds the renewed one."""
    db_a, db_b = Database(db_url), Database(db_url)
    gate = Gate()
    # A's clock jumps 100 s before each renewal, so consecutive leases lie 100 s apart and
    # B's clock fits between them whatever the machine's load.
    a_clock, b_clock = AheadClock(), AheadClock()
    runner_a = Worker(db_a, {KIND: gate}, name="A", lease_s=60, renew_every_s=0.05, clock=a_clock)
    runner_b = Worker(db_b, {KIND: gate}, name="B", lease_s=60, clock=b_clock)
    try:
        await add(db_a, "long", utc_now())
        [held] = await runner_a.claim()
        running = asyncio.create_task(runner_a._run(held))
        await eventually(lambda: _true(gate.inside), what="the job to start")
        lease = held.lease_until
        for _ in range(3):  # three renewals
            ended = lease
            a_clock.ahead += timedelta(seconds=100)
            lease = await eventually(
                lambda ended=ended: _lease_after(db_b, "long", ended + timedelta(seconds=90)),
                what="a renewal",
            )
            b_clock.advance_past(ended)  # for B, the lease before this renewal has ended
            assert await runner_b.claim() == []
            assert gate.inside == {"long"}
        row = await job(db_b, "long")
        assert row is not None and row.locked_by == "A"
        gate.open()
        await asyncio.wait_for(running, timeout=5)
        assert await jobs(db_b) == []
        assert [call.key for call in gate.calls] == ["long"]
    finally:
        await db_a.dispose()
        await db_b.dispose()


async def _lease_after(db: Database, key: str, lease: datetime) -> datetime | None:
    """The job's lease when a renewal has moved it past `lease`."""
    row = await job(db, key)
    assert row is not None
    return row.run_at if row.run_at > lease else None


async def test_a_job_that_ends_while_its_lease_is_being_renewed_is_finished(db):
    """The handler returns while a renewal is writing its new lease: the renewal is cancelled
    mid-commit, and the job is still finished (not left behind to run a second time)."""
    gate = Gate()
    # The first renewal comes at once; the lease is long enough that no loaded machine ends
    # it before the job is finished.
    runner = worker(db, {KIND: gate}, lease_s=60, renew_every_s=0.05)

    def open_on_renewal(_conn: Any, clause: Any, *_: Any) -> None:
        if getattr(clause, "is_update", False) and gate.inside:
            gate.open()  # the handler returns as soon as the renewal awaits its commit

    event.listen(db.write_engine.sync_engine, "after_execute", open_on_renewal)
    await add(db, "renewed", utc_now())
    assert await runner.run_once() == 1
    assert gate.cancelled == []
    assert await jobs(db) == []


async def test_a_job_that_lost_its_lease_stops_at_once(db_url):
    db = Database(db_url)
    gate = Gate()
    runner = Worker(db, {KIND: gate}, name="A", lease_s=0.6)
    try:
        await add(db, "taken", utc_now())
        [held] = await runner.claim()
        running = asyncio.create_task(runner._run(held))
        await eventually(lambda: _true(gate.inside), what="the job to start")
        # Another worker took the row (as after a lease that ran out during a long pause).
        taken_until = utc_now() + timedelta(hours=1)
        async with db.transaction() as session:
            await session.execute(
                update(Job).where(Job.key == "taken").values(locked_by="B", run_at=taken_until)
            )
        await asyncio.wait_for(running, timeout=5)  # its next renewal fails: cancelled
        assert gate.cancelled == ["taken"]
        row = await job(db, "taken")
        assert row is not None
        assert (row.locked_by, row.run_at, row.failures) == ("B", taken_until, 0)  # untouched
    finally:
        await db.dispose()


async def test_a_job_that_keeps_killing_its_workers_is_dead_without_running_again(db):
    handler = Recorder()
    await add(db, "kills-workers", utc_now())
    clock = AheadClock()  # moved past each lease instead of waiting for it to run out
    for n in range(2):  # two workers claimed it and died: their leases ran out
        dying = worker(db, {KIND: handler}, name=f"dies-{n}", lease_s=60, clock=clock)
        [claimed] = await dying.claim()
        clock.advance_past(claimed.lease_until)
    survivor = worker(db, {KIND: handler}, max_failures=2, clock=clock)
    assert await survivor.run_once() == 1
    row = await job(db, "kills-workers")
    assert row is not None and row.dead_at is not None and row.failures == 2
    assert row.last_error is not None and "lease ran out" in row.last_error
    assert handler.calls == []


async def _true(value: Any) -> bool:
    return bool(value)


async def _make_due(db: Database, key: str) -> None:
    async with db.transaction() as session:
        await session.execute(update(Job).where(Job.key == key).values(run_at=utc_now()))


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
