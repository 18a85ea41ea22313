"""Idempotency keys: replay the first completed response; refuse a reused key with another
body (422) or while the first request still runs (409). Safe across API processes: the key
row is claimed with INSERT … ON CONFLICT DO NOTHING and then locked.

What is stored: 2xx and 5xx answers (a 5xx may hide work that was done, so a retry must not
run it again). A 4xx answer means nothing was created: the key is released and the request
may be retried with the same key.

A request whose work spans several transactions (the STK push: invoice, Daraja, outcome)
binds the key to what it created in the transaction that creates it (`bind`). If its process
dies before the answer is stored, a retry after the lock (`PESAGATE_IDEMPOTENCY_LOCK_S`) takes
the key over and answers from that resource (`Resume`): the work is never run twice, so a
customer is never prompted twice.
A request done in one transaction stores its answer in that transaction (`complete_in`).

Answers are JSON bytes and a status (`Answer`); the dependency makes them HTTP responses.
"""

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from pesagate.db import AsyncSession, Database
from pesagate.errors import ApiError, Conflict, ValidationFailed
from pesagate.idempotency import repository
from pesagate.kit.clock import utc_now
from pesagate.models import KeyState
from pesagate.worker.runner import ClaimedJob, RunAgainAt

HEADER = "Idempotency-Key"
KEY_MAX = 255
LOCK_S = 120.0  # default: an in-flight request older than this is presumed dead (it crashed)
REPLAYED_HEADER = "Idempotent-Replayed"


class ReusedKey(ApiError):
    status_code = 422
    default_detail = "This Idempotency-Key was used with a different request."


@dataclass(slots=True)
class Claim:
    row_pk: int
    owner: str
    answered: bool = False  # the handler stored its answer in its own transaction


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send back: a JSON body and its status; `replayed` when it was stored before."""

    status: int
    body: bytes
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Resume:
    """The key is taken over from a request that died after committing `resource_pk`."""

    claim: Claim
    resource_pk: int


class TakenOver(Conflict):
    default_detail = "A retry with this Idempotency-Key took over the request."


Handler = Callable[[Claim | None], Awaitable[Mapping[str, Any]]]
Resumer = Callable[[int], Awaitable[Mapping[str, Any]]]


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The same request, whatever its JSON whitespace or key order."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), canonical])).hexdigest()


async def claim(
    db: Database,
    business_pk: int,
    key: str,
    print_: str,
    ttl_s: float,
    lock_s: float = LOCK_S,
) -> Claim | Answer | Resume:
    owner = secrets.token_hex(16)
    now = utc_now()
    async with db.transaction() as session:
        row = await repository.insert_or_lock(
            session,
            business_pk,
            key,
            print_,
            owner,
            now,
            locked_until=now + timedelta(seconds=lock_s),
            expires_at=now + timedelta(seconds=ttl_s),
        )
        if row.owner == owner:
            return Claim(row.id, owner)
        if row.expires_at > now:
            if row.fingerprint != print_:
                raise ReusedKey()
            if row.state == KeyState.COMPLETED:
                return Answer(
                    row.response_status or 200, (row.response_body or "").encode(), replayed=True
                )
            if row.locked_until > now:
                raise Conflict("A request with this Idempotency-Key is still being processed.")
            if row.resource_pk is not None:
                # Its holder died after committing what it created: answer from that.
                row.owner, row.locked_until = owner, now + timedelta(seconds=lock_s)
                return Resume(Claim(row.id, owner), row.resource_pk)
        # Expired, or held by a request that died before creating anything: take it over.
        row.owner, row.fingerprint, row.state = owner, print_, KeyState.IN_FLIGHT
        row.response_status = row.response_body = row.resource_pk = None
        row.locked_until = now + timedelta(seconds=lock_s)
        row.expires_at = now + timedelta(seconds=ttl_s)
        return Claim(row.id, owner)


async def bind(session: AsyncSession, held: Claim | None, resource_pk: int) -> None:
    """Tie the key to the row this request creates, in the transaction that creates it. A key
    taken over meanwhile (its holder was presumed dead) rolls that transaction back."""
    if held is None:
        return
    if not await repository.bind_resource(session, held.row_pk, held.owner, resource_pk):
        raise TakenOver()


async def complete_in(session: AsyncSession, held: Claim | None, body: Mapping[str, Any]) -> None:
    """Store the answer in the transaction that does the work, so a crash before the gate's
    own `complete` cannot let a retry do it again."""
    if held is None:
        return
    if not await repository.store_answer(session, held.row_pk, held.owner, 200, orjson.dumps(body)):
        raise TakenOver()
    held.answered = True


async def complete(db: Database, held: Claim, status: int, body: bytes) -> None:
    async with db.transaction() as session:
        await repository.store_answer(session, held.row_pk, held.owner, status, body)


async def fail(db: Database, held: Claim, status: int, body: bytes) -> None:
    """The request failed. If it had created something, the key stays bound to it and the
    next retry answers from it; else a 4xx releases the key (nothing was created) and a 5xx
    is stored (it may hide work that was done)."""
    async with db.transaction() as session:
        if await repository.bound_resource(session, held.row_pk, held.owner) is not None:
            await repository.unlock(session, held.row_pk, held.owner)
        elif status < 500:
            await repository.release(session, held.row_pk, held.owner)
        else:
            await repository.store_answer(session, held.row_pk, held.owner, status, body)


async def run_idempotently(
    db: Database,
    business_pk: int,
    key: str | None,
    request_print: str,
    ttl_s: float,
    handler: Handler,
    resume: Resumer | None = None,
    lock_s: float = LOCK_S,
) -> Answer:
    """Run `handler` once per key; without a key, just run it. `resume` renders the answer
    from what a died request had bound the key to (routes that `bind` must give it)."""
    if key is None:
        return Answer(200, orjson.dumps(await handler(None)))
    if not key.strip() or len(key) > KEY_MAX:
        raise ValidationFailed.field(HEADER, f"Send 1 to {KEY_MAX} characters.")
    held = await claim(db, business_pk, key, request_print, ttl_s, lock_s)
    if isinstance(held, Answer):
        return held
    if isinstance(held, Resume):
        if resume is None:
            raise Conflict("This Idempotency-Key's request cannot be resumed here.")
        body = orjson.dumps(await resume(held.resource_pk))
        await complete(db, held.claim, 200, body)
        return Answer(200, body, replayed=True)
    return await _run_held(db, held, handler)


async def _run_held(db: Database, held: Claim, handler: Handler) -> Answer:
    try:
        result = await handler(held)
    except ApiError as error:
        await fail(db, held, error.status_code, orjson.dumps(error.body()))
        raise
    except Exception:
        await fail(db, held, 500, b'{"detail":"A server error occurred."}')
        raise
    body = orjson.dumps(result)
    if not held.answered:
        await complete(db, held, 200, body)
    return Answer(200, body)


async def prune(db: Database) -> int:
    async with db.transaction() as session:
        return await repository.delete_expired(session, utc_now())


PRUNE_JOB = "prune_idempotency_keys"
PRUNE_EVERY_S = 3_600.0


class Pruner:
    """A periodic job: deletes expired keys, then schedules itself again."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, job: ClaimedJob) -> RunAgainAt:
        await prune(self.db)
        return RunAgainAt(utc_now() + timedelta(seconds=PRUNE_EVERY_S))
