"""Runs due jobs. Any number of workers may run against one database.

A worker claims a batch of due jobs in one statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
so two workers never claim the same row; SQLite has one writer at a time anyway). Claiming moves
`run_at` to the end of a lease: if the worker dies, the job becomes due again when the lease
runs out and another worker takes it. Jobs must therefore be idempotent, and every handler is.
"""

import asyncio
import contextlib
import os
import socket
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import delete, select, update

from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Job

log = structlog.get_logger("pesagate.worker")


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class RunAgainAt:
    """A handler's answer: not finished, run again at this time."""

    at: datetime


Handler = Callable[[ClaimedJob], Awaitable[RunAgainAt | None]]


def worker_name() -> str:
    """`host:pid`, cut to fit `jobs.locked_by` (64) however long the host name."""
    pid = str(os.getpid())
    return f"{socket.gethostname()[: 63 - len(pid)]}:{pid}"


def failure_backoff_s(attempts: int) -> float:
    return float(min(2 ** min(attempts, 10), 300))


class Worker:
    def __init__(
        self,
        db: Database,
        handlers: dict[str, Handler],
        *,
        name: str | None = None,
        lease_s: float = 60.0,
        poll_s: float = 0.5,
        batch: int = 50,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.name = name or worker_name()
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker started", worker=self.name)
        while not stop.is_set():
            try:
                ran = await self.run_once()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("worker cycle failed")
                ran = 0
            if ran < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
        log.info("worker stopped", worker=self.name)

    async def run_once(self) -> int:
        jobs = await self.claim()
        await asyncio.gather(*(self._run(job) for job in jobs))
        return len(jobs)

    async def claim(self) -> list[ClaimedJob]:
        now = utc_now()
        lease_until = now + timedelta(seconds=self.lease_s)
        due = (
            select(Job.id)
            .where(Job.run_at <= now)
            .order_by(Job.run_at)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            update(Job)
            .where(Job.id.in_(due))
            .values(locked_by=self.name, run_at=lease_until, attempts=Job.attempts + 1)
            .returning(Job.id, Job.kind, Job.key, Job.payload, Job.attempts)
            .execution_options(synchronize_session=False)
        )
        async with self.db.transaction() as session:
            rows = (await session.execute(statement)).all()
        return [
            ClaimedJob(
                row.id, row.kind, row.key, orjson.loads(row.payload), row.attempts, lease_until
            )
            for row in rows
        ]

    async def _run(self, job: ClaimedJob) -> None:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            outcome = await handler(job)
        except Exception as exc:
            log.error("job failed", job=job.key, attempts=job.attempts, error=repr(exc))
            retry_at = utc_now() + timedelta(seconds=failure_backoff_s(job.attempts))
            await self._release(job, retry_at, error=_describe(exc))
            return
        if outcome is None:
            await self._finish(job)
        else:
            await self._release(job, outcome.at, error=None)

    def _mine(self, job: ClaimedJob) -> Any:
        # Only while our lease holds: after it ran out another worker may own the row.
        return (Job.id == job.id) & (Job.locked_by == self.name) & (Job.run_at == job.lease_until)

    async def _finish(self, job: ClaimedJob) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(Job).where(self._mine(job)))

    async def _release(self, job: ClaimedJob, at: datetime, error: str | None) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(self._mine(job))
                .values(run_at=at, locked_by=None, last_error=error)
                .execution_options(synchronize_session=False)
            )


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:500]
