"""Runs due jobs. Any number of workers may run against one database.

A worker is a long-running consumer with `concurrency` slots: it claims due jobs as slots free
up, in one statement per claim (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never
claim the same row; SQLite has one writer at a time anyway), made only once a read has found
something due (most polls find nothing), so a slow job holds one slot, not
the whole worker. Claiming moves `run_at` to the end of a lease: if the worker dies, the job
becomes due again when the lease runs out and another worker takes it. Jobs must therefore be
idempotent, and every handler is.

While a job runs its lease is renewed, and the job is cancelled before the end of the lease it
last renewed (and in any case after `job_timeout_s`): a job whose renewals fail stops before
another worker may take it, so it never runs twice at once.

A job may name a `lane` (the destination it calls). At most `lane_slots` jobs of one lane run
at a time here: a destination that hangs holds that share of the slots, and every other lane
keeps the rest. A lane may sit in a group (`group/lane`, e.g. a business's webhook endpoints):
then the group as a whole gets `lane_slots` and each of its lanes half of them: a tenant with
many slow destinations holds one share, and with one slow destination its others keep half.
A claim takes no more jobs of a lane or group than the room it has left, so a destination's
backlog (a receiver that hangs while its events pile up) waits in the table, never in front
of other destinations' younger jobs.

A handler that raises or runs past its deadline is a failed attempt (logged with its
traceback, retried with backoff); so is a lease that ran out (its worker died or hung).
After `max_failures` failures in a row the job is dead: kept, never claimed, listed by
`pesagate jobs list --dead` and revived by `pesagate jobs retry`.
"""

import asyncio
import contextlib
import os
import socket
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    ScalarSelect,
    Update,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from pesagate import metrics
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Job

log = structlog.get_logger("pesagate.worker")

LANE_RETRY_S = 0.5  # a job over its lane's cap is claimable again this soon
CLAIM_STATEMENTS_KEPT = 256  # built claims kept, one per claim size and lanes running
SHUTDOWN_GRACE_S = 5.0  # running jobs get this long to finish when the worker stops
DEAD_GAUGE_EVERY_S = 30.0  # how often the dead-jobs gauge is recounted
ABANDONED = "its lease ran out while it ran (the worker died or hung)"


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int
    lease_until: datetime
    failures: int = 0
    lane: str | None = None


@dataclass(frozen=True, slots=True)
class RunAgainAt:
    """A handler's answer: not finished, run again at this time."""

    at: datetime


# A handler may also have `async gave_up(session, job, reason)`: called in the transaction
# that makes its job dead, to settle the handler's own records (a webhook event fails).
Handler = Callable[[ClaimedJob], Awaitable[RunAgainAt | None]]


def worker_name() -> str:
    """`host:pid`, cut to fit `jobs.locked_by` (64) however long the host name."""
    pid = str(os.getpid())
    return f"{socket.gethostname()[: 63 - len(pid)]}:{pid}"


LANE_GROUP_SEPARATOR = "/"


def lane_levels(lane: str) -> list[str]:
    """What a running job of `lane` counts against: its group, if any, and the lane itself."""
    group, separator, _ = lane.partition(LANE_GROUP_SEPARATOR)
    return [group, lane] if separator else [lane]


def failure_backoff_s(failures: int) -> float:
    return float(min(2 ** min(failures, 10), 300))


class Worker:
    def __init__(
        self,
        db: Database,
        handlers: dict[str, Handler],
        *,
        name: str | None = None,
        lease_s: float = 60.0,
        poll_s: float = 0.5,
        concurrency: int = 32,
        lane_slots: int = 8,
        job_timeout_s: float = 300.0,
        max_failures: int = 10,
        clock: Callable[[], datetime] = utc_now,
        renew_every_s: float | None = None,
    ) -> None:
        self.db = db
        # The wall clock that claims, leases and retries are stamped with; tests move their
        # own instead of waiting for a lease to run out.
        self.clock = clock
        self.renew_every_s = lease_s / 3 if renew_every_s is None else renew_every_s
        self.handlers = handlers
        self.name = name or worker_name()
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.concurrency = concurrency
        # One lane never takes every slot: the other destinations always keep one.
        self.lane_slots = max(1, min(lane_slots, concurrency - 1))
        self.job_timeout_s = job_timeout_s
        self.max_failures = max_failures
        self._leases: dict[int, datetime] = {}  # running job id -> the lease we hold now
        # running job id -> a lease a renewal asked for and may or may not have written (it was
        # cancelled mid-commit): until we know, the row may hold either lease.
        self._unsure: dict[int, datetime] = {}
        self._lanes: Counter[str] = Counter()  # lane or lane group -> jobs of it running here
        self._claims: dict[tuple[int, tuple[tuple[str, int], ...]], Update] = {}

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker started", worker=self.name, concurrency=self.concurrency)
        running: dict[asyncio.Task[None], ClaimedJob] = {}
        slot_freed = asyncio.Event()
        next_count = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_count:
                await self.count_dead()
                next_count = time.monotonic() + DEAD_GAUGE_EVERY_S
            free = self.concurrency - len(running)
            claimed = await self._claim_safely(free) if free > 0 else []

            def free_slot(done: asyncio.Task[None]) -> None:
                running.pop(done, None)
                slot_freed.set()

            for job in claimed:
                task = asyncio.create_task(self._run(job))
                running[task] = job
                task.add_done_callback(free_slot)
            # Claim again when a slot frees (the claim may have skipped a full lane, which now
            # has room) or after the poll interval (new jobs), whichever comes first.
            await self._wait(stop, slot_freed)
            slot_freed.clear()
        await self._drain(running)
        log.info("worker stopped", worker=self.name)

    async def run_once(self) -> int:
        """Claim what is due (up to `concurrency`) and run it to the end; for tests and tools."""
        jobs = await self.claim()
        await asyncio.gather(*(self._run(job) for job in jobs))
        return len(jobs)

    async def count_dead(self) -> None:
        """Set the dead-jobs gauge from the database (every worker sees every dead job)."""
        try:
            async with self.db.read() as session:
                rows = await session.execute(
                    select(Job.kind, func.count())
                    .where(Job.dead_at.is_not(None))
                    .group_by(Job.kind)
                )
                counts: dict[str, int] = {kind: count for kind, count in rows}
        except Exception:
            log.exception("counting dead jobs failed")
            return
        for kind in {*counts, *self.handlers}:
            metrics.DEAD_JOBS.labels(kind).set(counts.get(kind, 0))

    async def _claim_safely(self, limit: int) -> list[ClaimedJob]:
        try:
            return await self.claim(limit)
        except Exception:  # the loop must outlive a database hiccup
            log.exception("claiming jobs failed")
            return []

    async def _wait(self, stop: asyncio.Event, slot_freed: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(slot_freed.wait())]
        try:
            await asyncio.wait(waits, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _drain(self, running: dict[asyncio.Task[None], ClaimedJob]) -> None:
        """Let running jobs finish for a moment; release the rest to run again at once."""
        if not running:
            return
        _, pending = await asyncio.wait(list(running), timeout=SHUTDOWN_GRACE_S)
        stopped = [running[task] for task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for job in stopped:
            with contextlib.suppress(Exception):
                await self._release(job, self.clock(), error=None, failures=None)
            self._forget_lease(job)

    async def claim(self, limit: int | None = None) -> list[ClaimedJob]:
        now = self.clock()
        if not await self._any_due(now):
            return []
        lease_until = now + timedelta(seconds=self.lease_s)
        room = tuple(sorted(self._lanes.items()))
        statement = self._claim_statement(limit or self.concurrency, room)
        params = {"claim_now": now, "claim_lease_until": lease_until}
        async with self.db.transaction() as session:
            rows = (await session.execute(statement, params)).all()
        return [
            ClaimedJob(
                row.id,
                row.kind,
                row.key,
                orjson.loads(row.payload),
                row.attempts,
                lease_until,
                row.failures,
                row.lane,
            )
            for row in rows
        ]

    async def _any_due(self, now: datetime) -> bool:
        """Most polls find nothing due: they ask with one indexed read, without the claim's
        write transaction (on SQLite, the write lock) and its windows (~1 ms of CPU more)."""
        async with self.db.read() as session:
            found = await session.scalar(
                select(Job.id).where(Job.run_at <= now, Job.dead_at.is_(None)).limit(1)
            )
        return found is not None

    def _claim_statement(self, limit: int, running: tuple[tuple[str, int], ...]) -> Update:
        """The claim for `limit` jobs while `running` (lane or group, count) run here. Built
        once per shape and kept (building it cost as much CPU as running it); the times are
        bound when it runs."""
        key = (limit, running)
        if (statement := self._claims.get(key)) is None:
            if len(self._claims) >= CLAIM_STATEMENTS_KEPT:
                self._claims.clear()
            # Still locked when claimed: its lease ran out (the worker died or hung): a failure.
            abandoned = case((Job.locked_by.is_not(None), 1), else_=0)
            now = bindparam("claim_now", type_=Job.run_at.type)
            statement = self._claims[key] = (
                update(Job)
                .where(Job.id.in_(self._claimable(now, limit, dict(running))))
                .values(
                    locked_by=self.name,
                    run_at=bindparam("claim_lease_until", type_=Job.run_at.type),
                    attempts=Job.attempts + 1,
                    failures=Job.failures + abandoned,
                )
                .returning(
                    Job.id, Job.kind, Job.key, Job.payload, Job.attempts, Job.failures, Job.lane
                )
                .execution_options(synchronize_session=False)
            )
        return statement

    def _claimable(
        self, now: BindParameter[datetime], limit: int, running: dict[str, int]
    ) -> ScalarSelect[int]:
        """The oldest due jobs, at most `limit`, and of each lane and lane group no more than
        the room it has left here. A lane with a backlog (a receiver that hangs while its
        events pile up) is never claimed past its share: "the oldest `limit`" alone would
        be its backlog, taken and put back again and again, while younger jobs of other
        lanes waited behind it."""
        due = (Job.run_at <= now) & Job.dead_at.is_(None)
        oldest_first = (Job.run_at, Job.id)
        by_lane = (
            select(
                Job.id,
                Job.run_at,
                Job.lane,
                self._lane_group(Job.lane).label("lane_group"),
                func.row_number().over(partition_by=Job.lane, order_by=oldest_first).label("nth"),
            )
            .where(due)
            .subquery()
        )
        in_lane_room = by_lane.c.lane.is_(None) | (
            by_lane.c.nth <= self._room(by_lane.c.lane, running)
        )
        by_group = (
            select(
                by_lane.c.id,
                by_lane.c.run_at,
                by_lane.c.lane_group,
                func.row_number()
                .over(partition_by=by_lane.c.lane_group, order_by=(by_lane.c.run_at, by_lane.c.id))
                .label("nth"),
            )
            .where(in_lane_room)
            .subquery()
        )
        in_group_room = by_group.c.lane_group.is_(None) | (
            by_group.c.nth <= self._room(by_group.c.lane_group, running)
        )
        oldest = (
            select(by_group.c.id)
            .where(in_group_room)
            .order_by(by_group.c.run_at, by_group.c.id)
            .limit(limit)
        )
        # Locked here, where no window function is (PostgreSQL refuses FOR UPDATE beside one):
        # a job another worker claimed meanwhile is skipped, or is no longer due.
        return (
            select(Job.id)
            .where(Job.id.in_(oldest), due)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )

    def _lane_group(
        self, lane: ColumnElement[str | None] | InstrumentedAttribute[str | None]
    ) -> ColumnElement[str | None]:
        """`group` of a lane `group/name`; a lane without a group is its own."""
        slash = (func.instr if self.db.is_sqlite else func.strpos)(lane, LANE_GROUP_SEPARATOR)
        return case((slash > 0, func.substr(lane, 1, slash - 1)), else_=lane)

    def _room(
        self, level: ColumnElement[str | None], running: dict[str, int]
    ) -> ColumnElement[int]:
        """How many more jobs of this lane or lane group may run here, given the jobs of
        each lane and group `running` here now."""
        idle = case(
            (level.contains(LANE_GROUP_SEPARATOR), max(1, self.lane_slots // 2)),
            else_=self.lane_slots,
        )
        busy = {name: max(0, self._cap(name) - count) for name, count in running.items()}
        return case(busy, value=level, else_=idle) if busy else idle

    async def _run(self, job: ClaimedJob) -> None:
        if job.lease_until <= self.clock():
            log.warning("job not started: its lease ran out first", job=job.key)
            return
        if job.lane is not None and self._lane_full(job.lane):
            await self._put_back(job)
            return
        if job.failures >= self.max_failures:  # abandoned by workers that died or hung
            await self._fail(job, ABANDONED, failures=job.failures)
            return
        self._leases[job.id] = job.lease_until
        levels = lane_levels(job.lane) if job.lane is not None else []
        self._lanes.update(levels)
        metrics.JOBS_RUNNING.inc()
        cancelled = False
        try:
            await self._run_and_settle(job)
        except asyncio.CancelledError:  # the worker is stopping: `_drain` releases the job
            cancelled = True
            raise
        finally:
            metrics.JOBS_RUNNING.dec()
            for level in levels:
                self._lanes[level] -= 1
                if not self._lanes[level]:
                    del self._lanes[level]
            if not cancelled:
                self._forget_lease(job)

    def _cap(self, level: str) -> int:
        """A lane group, or a lane of its own: `lane_slots`; a lane in a group: half of it."""
        if LANE_GROUP_SEPARATOR in level:
            return max(1, self.lane_slots // 2)
        return self.lane_slots

    def _lane_full(self, lane: str) -> bool:
        return any(self._lanes[level] >= self._cap(level) for level in lane_levels(lane))

    def _forget_lease(self, job: ClaimedJob) -> None:
        self._leases.pop(job.id, None)
        self._unsure.pop(job.id, None)

    async def _run_and_settle(self, job: ClaimedJob) -> None:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            outcome = await self._under_lease(job, handler)
        except Exception as exc:
            log.exception("job failed", job=job.key, attempts=job.attempts, failures=job.failures)
            await self._fail(job, _describe(exc), failures=job.failures + 1)
            return
        if outcome is None:
            metrics.JOB_RUNS.labels(job.kind, "done").inc()
            await self._finish(job)
        else:
            metrics.JOB_RUNS.labels(job.kind, "again").inc()
            await self._release(job, outcome.at, error=None, failures=0)

    async def _under_lease(self, job: ClaimedJob, handler: Handler) -> RunAgainAt | None:
        """Run the handler, renewing the lease, cancelled before the lease we hold runs out."""
        loop = asyncio.get_running_loop()
        hard_deadline = loop.time() + self.job_timeout_s
        try:
            async with asyncio.timeout_at(self._deadline(job, hard_deadline)) as deadline:
                renewer = asyncio.create_task(self._keep_leased(job, deadline, hard_deadline))
                try:
                    return await handler(job)
                finally:
                    renewer.cancel()
                    # A renewal cancelled mid-commit is settled (rolled back or not) before
                    # the job is: `_unsure` then tells which leases the row may hold.
                    await asyncio.gather(renewer, return_exceptions=True)
        except TimeoutError as exc:
            if deadline.expired():
                raise JobTimeout(self._timeout_reason(job, hard_deadline)) from exc
            raise

    def _deadline(self, job: ClaimedJob, hard_deadline: float) -> float:
        """Loop time at which the job must stop: before the end of our lease, by a margin
        that leaves time to release it while it is still ours."""
        lease_left_s = (self._leases[job.id] - self.clock()).total_seconds()
        lease_end = asyncio.get_running_loop().time() + lease_left_s - self.lease_s / 6
        return min(hard_deadline, lease_end)

    def _timeout_reason(self, job: ClaimedJob, hard_deadline: float) -> str:
        if asyncio.get_running_loop().time() >= hard_deadline:
            return f"ran longer than {self.job_timeout_s:g} s"
        return "its lease could not be renewed"

    async def _keep_leased(
        self, job: ClaimedJob, deadline: asyncio.Timeout, hard_deadline: float
    ) -> None:
        while True:
            await asyncio.sleep(self.renew_every_s)
            try:
                renewed = await self._renew(job)
            except Exception:
                log.exception("lease renewal failed", job=job.key)
                continue  # the deadline still stops the job before the lease we hold ends
            if not renewed:  # another worker owns it now: stop at once
                log.error("job lost its lease", job=job.key)
                deadline.reschedule(asyncio.get_running_loop().time())
                return
            deadline.reschedule(self._deadline(job, hard_deadline))

    async def _renew(self, job: ClaimedJob) -> bool:
        lease_until = self.clock() + timedelta(seconds=self.lease_s)
        still_mine = self._still_leased_by_me(job)
        self._unsure[job.id] = lease_until  # stays if we are cancelled before we know
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Job)
                .where(still_mine)
                .values(run_at=lease_until)
                .execution_options(synchronize_session=False)
            )
        del self._unsure[job.id]
        if _rowcount(result) != 1:
            return False
        self._leases[job.id] = lease_until
        return True

    def _still_leased_by_me(self, job: ClaimedJob) -> ColumnElement[bool]:
        # Only while our lease holds: after it ran out another worker may own the row (and
        # this worker may have claimed it again: a new claim is a new lease).
        leases = {self._leases.get(job.id, job.lease_until)}
        if job.id in self._unsure:
            leases.add(self._unsure[job.id])
        return (Job.id == job.id) & (Job.locked_by == self.name) & Job.run_at.in_(leases)

    async def _finish(self, job: ClaimedJob) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(Job).where(self._still_leased_by_me(job)))

    async def _fail(self, job: ClaimedJob, error: str, failures: int) -> None:
        if failures < self.max_failures:
            metrics.JOB_RUNS.labels(job.kind, "failed").inc()
            retry_at = self.clock() + timedelta(seconds=failure_backoff_s(failures))
            await self._release(job, retry_at, error=error, failures=failures)
            return
        metrics.JOB_RUNS.labels(job.kind, "dead").inc()
        log.error("job dead", job=job.key, failures=failures, error=error)
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Job)
                .where(self._still_leased_by_me(job))
                .values(locked_by=None, last_error=error, failures=failures, dead_at=self.clock())
                .execution_options(synchronize_session=False)
            )
            gave_up = getattr(self.handlers.get(job.kind), "gave_up", None)
            if _rowcount(result) == 1 and gave_up is not None:
                await _settle_own_records(session, gave_up, job, error)
        await self.count_dead()

    async def _put_back(self, job: ClaimedJob) -> None:
        """Over its lane's cap (a claim takes only the room left, so only when two claims
        overlap, as `run_once` beside `run`): claimable again shortly, as if never claimed."""
        async with self.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(self._still_leased_by_me(job))
                .values(
                    run_at=self.clock() + timedelta(seconds=LANE_RETRY_S),
                    locked_by=None,
                    attempts=Job.attempts - 1,
                )
                .execution_options(synchronize_session=False)
            )

    async def _release(
        self, job: ClaimedJob, at: datetime, error: str | None, failures: int | None
    ) -> None:
        """Unlock the job to run at `at`; `failures`: the new count (None: leave it)."""
        values: dict[str, Any] = {"run_at": at, "locked_by": None, "last_error": error}
        if failures is not None:
            values["failures"] = failures
        async with self.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(self._still_leased_by_me(job))
                .values(**values)
                .execution_options(synchronize_session=False)
            )


async def _settle_own_records(
    session: AsyncSession, gave_up: Callable[..., Awaitable[None]], job: ClaimedJob, error: str
) -> None:
    """The handler's `gave_up`, in a savepoint: if it fails, the job is still dead."""
    try:
        async with session.begin_nested():
            await gave_up(session, job, error)
    except Exception:
        log.exception("settling a dead job's records failed", job=job.key)


class JobTimeout(Exception):
    """The job ran past its deadline and was cancelled."""


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:500]
