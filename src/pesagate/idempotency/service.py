"""Idempotency keys: replay the first completed response; refuse a reused key with another
body (422) or while the first request still runs (409). Safe across API processes: the key
row is claimed with INSERT … ON CONFLICT DO NOTHING and then locked.

What is stored: 2xx and 5xx answers (a 5xx may hide work that was done, so a retry must not
run it again). A 4xx answer means nothing was created: the key is released and the request
may be retried with the same key.
"""

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from starlette.responses import Response

from pesagate.db import Database, insert_ignore
from pesagate.errors import ApiError, Conflict, ValidationFailed
from pesagate.kit.clock import utc_now
from pesagate.models import IdempotencyKey, KeyState
from pesagate.worker.runner import ClaimedJob, RunAgainAt

HEADER = "Idempotency-Key"
KEY_MAX = 255
LOCK_S = 120  # an in-flight request older than this is presumed dead (its process crashed)
REPLAYED_HEADER = "Idempotent-Replayed"


class ReusedKey(ApiError):
    status_code = 422
    default_detail = "This Idempotency-Key was used with a different request."


@dataclass(frozen=True, slots=True)
class Claim:
    row_pk: int
    owner: str


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: bytes


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The same request, whatever its JSON whitespace or key order."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), canonical])).hexdigest()


async def claim(
    db: Database, business_pk: int, key: str, print_: str, ttl_s: float
) -> Claim | Replay:
    owner = secrets.token_hex(16)
    now = utc_now()
    async with db.transaction() as session:
        await insert_ignore(
            session,
            IdempotencyKey,
            {
                "business_id": business_pk,
                "key": key,
                "fingerprint": print_,
                "owner": owner,
                "state": KeyState.IN_FLIGHT,
                "locked_until": now + timedelta(seconds=LOCK_S),
                "expires_at": now + timedelta(seconds=ttl_s),
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
        if row.owner == owner:
            return Claim(row.id, owner)
        if row.expires_at > now:
            if row.fingerprint != print_:
                raise ReusedKey()
            if row.state == KeyState.COMPLETED:
                return Replay(row.response_status or 200, (row.response_body or "").encode())
            if row.locked_until > now:
                raise Conflict("A request with this Idempotency-Key is still being processed.")
        # Expired, or held by a request that died: this request takes the key over.
        row.owner, row.fingerprint, row.state = owner, print_, KeyState.IN_FLIGHT
        row.response_status = row.response_body = None
        row.locked_until = now + timedelta(seconds=LOCK_S)
        row.expires_at = now + timedelta(seconds=ttl_s)
        return Claim(row.id, owner)


async def complete(db: Database, held: Claim, status: int, body: bytes) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == held.row_pk, IdempotencyKey.owner == held.owner)
            .values(state=KeyState.COMPLETED, response_status=status, response_body=body.decode())
        )


async def release(db: Database, held: Claim) -> None:
    async with db.transaction() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == held.row_pk, IdempotencyKey.owner == held.owner
            )
        )


async def run_idempotently(
    db: Database,
    business_pk: int,
    key: str | None,
    request_print: str,
    ttl_s: float,
    handler: Callable[[], Awaitable[dict[str, Any]]],
) -> Response:
    """Run `handler` once per key; without a key, just run it."""
    if key is None:
        return _json(orjson.dumps(await handler()), 200)
    if not key.strip() or len(key) > KEY_MAX:
        raise ValidationFailed.field(HEADER, f"Send 1 to {KEY_MAX} characters.")
    held = await claim(db, business_pk, key, request_print, ttl_s)
    if isinstance(held, Replay):
        return _json(held.body, held.status, {REPLAYED_HEADER: "true"})
    try:
        result = await handler()
    except ApiError as error:
        if error.status_code < 500:
            await release(db, held)
        else:
            await complete(db, held, error.status_code, orjson.dumps(error.body()))
        raise
    except Exception:
        await complete(db, held, 500, b'{"detail":"A server error occurred."}')
        raise
    body = orjson.dumps(result)
    await complete(db, held, 200, body)
    return _json(body, 200)


def _json(body: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def prune(db: Database) -> int:
    async with db.transaction() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at < utc_now())
        )
    return int(getattr(result, "rowcount", 0) or 0)


PRUNE_JOB = "prune_idempotency_keys"
PRUNE_EVERY_S = 3_600.0


class Pruner:
    """A periodic job: deletes expired keys, then schedules itself again."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, job: ClaimedJob) -> RunAgainAt:
        await prune(self.db)
        return RunAgainAt(utc_now() + timedelta(seconds=PRUNE_EVERY_S))
