"""Every SQL statement on the `idempotency_keys` table. Functions take the write session of
the transaction they are part of and never commit."""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update

from pesagate.db import AsyncSession, insert_ignore
from pesagate.kit.clock import utc_now
from pesagate.models import IdempotencyKey, KeyState


async def insert_or_lock(
    session: AsyncSession,
    business_pk: int,
    key: str,
    fingerprint: str,
    owner: str,
    now: datetime,
    locked_until: datetime,
    expires_at: datetime,
) -> IdempotencyKey:
    """The business's row for this key, created for `owner` unless it exists (concurrent
    claims both succeed, one row results), then locked until the transaction ends."""
    await insert_ignore(
        session,
        IdempotencyKey,
        {
            "business_id": business_pk,
            "key": key,
            "fingerprint": fingerprint,
            "owner": owner,
            "state": KeyState.IN_FLIGHT,
            "locked_until": locked_until,
            "expires_at": expires_at,
            "created_at": now,
        },
    )
    row = await session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.business_id == business_pk, IdempotencyKey.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def _held(row_pk: int, owner: str) -> ColumnElement[bool]:
    return (IdempotencyKey.id == row_pk) & (IdempotencyKey.owner == owner)


async def bind_resource(session: AsyncSession, row_pk: int, owner: str, resource_pk: int) -> bool:
    """False if the key is no longer this owner's."""
    result = await session.execute(
        update(IdempotencyKey).where(_held(row_pk, owner)).values(resource_pk=resource_pk)
    )
    return _rowcount(result) == 1


async def store_answer(
    session: AsyncSession, row_pk: int, owner: str, status: int, body: bytes
) -> bool:
    """Mark the key completed with its answer; False if it is no longer this owner's."""
    result = await session.execute(
        update(IdempotencyKey)
        .where(_held(row_pk, owner))
        .values(state=KeyState.COMPLETED, response_status=status, response_body=body.decode())
    )
    return _rowcount(result) == 1


async def bound_resource(session: AsyncSession, row_pk: int, owner: str) -> int | None:
    resource_pk: int | None = await session.scalar(
        select(IdempotencyKey.resource_pk).where(_held(row_pk, owner))
    )
    return resource_pk


async def unlock(session: AsyncSession, row_pk: int, owner: str) -> None:
    """Let the next retry take the key over now."""
    await session.execute(
        update(IdempotencyKey).where(_held(row_pk, owner)).values(locked_until=utc_now())
    )


async def release(session: AsyncSession, row_pk: int, owner: str) -> None:
    await session.execute(delete(IdempotencyKey).where(_held(row_pk, owner)))


async def delete_expired(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < now))
    return _rowcount(result)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
