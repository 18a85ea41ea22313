"""Scheduling jobs: rows written in the caller's transaction, so a job exists exactly when the
change that needs it was committed."""

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.db import Database, connection_of, write
from pesagate.kit.clock import utc_now
from pesagate.models import Job

# What a kind of job's own records need when a dead job of that kind is revived by hand
# (`pesagate jobs retry`): a dead webhook delivery's event is reopened. Wired by the
# composition root, like the handlers.
Revived = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]


async def schedule(
    session: AsyncSession,
    kind: str,
    key: str,
    run_at: datetime,
    payload: dict[str, Any],
    lane: str | None = None,
) -> None:
    """Add a job unless one with this key is already waiting (then move it earlier if need be).
    A dead job with this key is revived: the work was asked for again."""
    existing = await session.scalar(select(Job).where(Job.key == key))
    if existing is None:
        await add_job(session, kind, key, run_at, payload, lane)
    elif existing.dead_at is not None:
        revive(existing, run_at)
    elif existing.locked_by is None and run_at < existing.run_at:
        existing.run_at = run_at


_NEW_JOB = insert(Job)


async def add_job(
    session: AsyncSession,
    kind: str,
    key: str,
    run_at: datetime,
    payload: dict[str, Any],
    lane: str | None = None,
) -> None:
    """Add a job whose key cannot exist yet (it names a row created in this transaction):
    no lookup first. The unique key still refuses a duplicate. A Core statement on the
    transaction's connection, written at once: every push adds one."""
    values = {
        "kind": kind,
        "key": key,
        "run_at": run_at,
        "payload": orjson.dumps(payload).decode(),
        "lane": lane,
        "created_at": utc_now(),  # given, not defaulted: see `db.write`
    }
    connection = await connection_of(session)
    await write(connection, _NEW_JOB, values)


def revive(job: Job, run_at: datetime) -> None:
    """A dead job runs again from a clean slate (its last error stays until the next run)."""
    job.dead_at = None
    job.failures = 0
    job.locked_by = None
    job.run_at = run_at


async def wake(session: AsyncSession, key: str) -> None:
    """A waiting job runs now (one that is running or dead is left alone)."""
    await session.execute(
        update(Job)
        .where(Job.key == key, Job.locked_by.is_(None), Job.dead_at.is_(None))
        .values(run_at=utc_now())
        .execution_options(synchronize_session=False)
    )


_CANCEL = delete(Job).where(Job.key == bindparam("key"))


async def cancel(session: AsyncSession, key: str) -> None:
    """Delete the job with this key. A Core statement on the transaction's connection: every
    state change of an invoice runs it. A Job of this key that the session read in this
    transaction (`schedule` does) leaves the session with it, so no flush writes it back.
    Jobs are never added through the session (`add_job` inserts at once)."""
    held = [job for job in session.identity_map.values() if _is_job(job, key)]
    for job in held:
        session.expunge(job)
    connection = await connection_of(session)
    await write(connection, _CANCEL, {"key": key})


def _is_job(instance: object, key: str) -> bool:
    return isinstance(instance, Job) and instance.key == key


async def next_run(session: AsyncSession, key: str) -> datetime | None:
    """When the job with this key runs next; None if it is running now, or there is none."""
    row = (await session.execute(select(Job.run_at, Job.locked_by).where(Job.key == key))).first()
    return None if row is None or row.locked_by is not None else row.run_at


async def schedule_periodic(db: Database, kinds: list[str]) -> None:
    """Jobs that reschedule themselves: one row per kind, however many workers start."""
    async with db.transaction() as session:
        for kind in kinds:
            await schedule(session, kind, f"periodic:{kind}", utc_now(), {})


async def listed(db: Database, *, dead: bool, kind: str | None, limit: int) -> list[Job]:
    """Jobs, oldest first: all, or only dead ones, or only of one kind."""
    statement = select(Job).order_by(Job.id).limit(limit)
    if dead:
        statement = statement.where(Job.dead_at.is_not(None))
    if kind:
        statement = statement.where(Job.kind == kind)
    async with db.read() as session:
        return list(await session.scalars(statement))


async def retry_dead(
    db: Database, job_ids: list[int] | None, revived: Mapping[str, Revived]
) -> list[int]:
    """Dead jobs (these, or all) run again now from a clean slate; their ids. MissingJobs, and
    nothing retried, if some id is not a dead job's."""
    async with db.transaction() as session:
        statement = select(Job).where(Job.dead_at.is_not(None)).with_for_update()
        if job_ids:
            statement = statement.where(Job.id.in_(job_ids))
        found = list(await session.scalars(statement.order_by(Job.id)))
        missing = set(job_ids or ()) - {job.id for job in found}
        if missing:  # checked before any change: nothing is retried
            raise MissingJobs(sorted(missing))
        for job in found:
            revive(job, utc_now())
            job.last_error = None
            if (settle := revived.get(job.kind)) is not None:
                await settle(session, orjson.loads(job.payload))
        return [job.id for job in found]


class MissingJobs(Exception):
    def __init__(self, job_ids: list[int]) -> None:
        super().__init__(f"No dead job with id {', '.join(map(str, job_ids))}.")
