"""Scheduling jobs: rows written in the caller's transaction, so a job exists exactly when the
change that needs it was committed."""

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.models import Job


async def schedule(
    session: AsyncSession, kind: str, key: str, run_at: datetime, payload: dict[str, Any]
) -> None:
    """Add a job unless one with this key is already waiting (then move it earlier if need be)."""
    existing = await session.scalar(select(Job).where(Job.key == key))
    if existing is None:
        add_job(session, kind, key, run_at, payload)
        return
    if existing.locked_by is None and run_at < existing.run_at:
        existing.run_at = run_at


def add_job(
    session: AsyncSession, kind: str, key: str, run_at: datetime, payload: dict[str, Any]
) -> None:
    """Add a job whose key cannot exist yet (it names a row created in this transaction):
    no lookup first. The unique key still refuses a duplicate."""
    session.add(Job(kind=kind, key=key, run_at=run_at, payload=orjson.dumps(payload).decode()))


async def cancel(session: AsyncSession, key: str) -> None:
    await session.execute(delete(Job).where(Job.key == key))
