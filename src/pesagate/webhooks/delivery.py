"""Delivering events: signed (Standard Webhooks), retried with backoff and jitter, in order
per invoice, at least once.

Each event has a job. A run of the job makes one attempt: it marks the event PROCESSING and
commits, POSTs, then records the attempt and the outcome. A worker killed in between leaves
the job to run again when its lease ends, with the same `webhook-id`: the receiver may see an
event twice (it deduplicates by `webhook-id`), never zero times.

An attempt is bounded in time (connecting, sending and reading the answer all within
`webhook_timeout_s`) and in memory: at most `RESPONSE_READ_LIMIT` bytes of the answer are read,
undecoded, and the connection is dropped rather than drained. Each event's job runs in the lane
of its endpoint, so one endpoint holds at most a share of the worker's slots.
"""

import asyncio
import random
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import EventStatus, WebhookAttempt, WebhookEndpoint, WebhookEvent
from pesagate.webhooks import repository
from pesagate.webhooks.emit import delivery_job_key
from pesagate.webhooks.repository import SETTLED
from pesagate.webhooks.urls import UnsafeDestination, check_destination, is_public_address
from pesagate.worker.jobs import next_run, wake
from pesagate.worker.runner import ClaimedJob, RunAgainAt

log = structlog.get_logger("pesagate.webhooks")

# An event waiting for an earlier one of its key is woken when that one settles. It also looks
# again by itself (a wake-up is missed when it comes while the waiting job runs): soon after
# an attempt that just started, later the longer the attempt has lasted, and not before an
# earlier event that is backing off tries again.
ORDER_WAIT_MIN_S = 0.25
ORDER_WAIT_MAX_S = 30.0
USER_AGENT = "pesagate-webhooks/1"
RESPONSE_READ_LIMIT = 4096  # bytes of a receiver's answer read at most; the rest never is
EXCERPT_CHARS = 1024  # of those, kept with the attempt


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    duration_ms: int
    error: str | None
    excerpt: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class _Prepared:
    url: str
    secret: str
    message_id: str
    payload: str


class Deliverer:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.live = settings.env == "live"
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, job: ClaimedJob) -> RunAgainAt | None:
        event_pk = int(job.payload["event_pk"])
        prepared = await self._begin(event_pk)
        if isinstance(prepared, RunAgainAt) or prepared is None:
            return prepared
        result = await self.post(prepared)
        return await self._record(event_pk, result, retry=True)

    async def gave_up(self, session: AsyncSession, job: ClaimedJob, reason: str) -> None:
        """The event's job died (errors, not answers: those have their own limit): the event
        fails, so that later events of its key go on and it can be replayed."""
        event = await repository.lock_event(session, int(job.payload["event_pk"]))
        if event is not None and event.status not in SETTLED:
            _settle_failed(event, f"Delivery stopped after repeated errors: {reason}")
            await _wake_next(session, event)

    async def attempt_once(self, event_pk: int) -> AttemptResult | None:
        """One attempt now, no retries (`pesagate webhook test`)."""
        prepared = await self._begin(event_pk)
        if not isinstance(prepared, _Prepared):
            return None
        result = await self.post(prepared)
        await self._record(event_pk, result, retry=False)
        return result

    async def _begin(self, event_pk: int) -> _Prepared | RunAgainAt | None:
        async with self.db.transaction() as session:
            event = await repository.lock_event(session, event_pk)
            if event is None or event.status in SETTLED:
                return None
            earlier = await repository.earlier_unsettled(session, event)
            if earlier is not None:
                return RunAgainAt(await _next_look(session, earlier))
            endpoint = event.endpoint
            if not endpoint.is_active or endpoint.deleted_at is not None:
                _settle_failed(event, "The endpoint is disabled or deleted.")
                await _wake_next(session, event)
                return None
            event.status = EventStatus.PROCESSING
            event.attempts += 1
            return _Prepared(endpoint.url, endpoint.signing_secret, event.public_id, event.payload)

    async def post(self, prepared: _Prepared) -> AttemptResult:
        started = time.perf_counter()
        try:
            # aiohttp's own timeout covers the request; this one the destination check too.
            async with asyncio.timeout(self.settings.webhook_timeout_s):
                await check_destination(prepared.url, self.live)
                status, head = await self._send(prepared)
        except UnsafeDestination as exc:
            return AttemptResult(None, _ms_since(started), str(exc))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return AttemptResult(None, _ms_since(started), _describe(exc))
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return AttemptResult(status, _ms_since(started), error, _excerpt(head))

    async def _send(self, prepared: _Prepared) -> tuple[int, bytes]:
        """POST and read the start of the answer; a longer answer's connection is closed."""
        async with self._http().post(
            prepared.url,
            data=prepared.payload.encode(),
            headers=_signed_headers(prepared),
            allow_redirects=False,
        ) as response:
            head = await _read_head(response.content, RESPONSE_READ_LIMIT)
            if not response.content.at_eof():
                response.close()  # never drain the rest: it may be endless
            return response.status, head

    async def _record(
        self, event_pk: int, result: AttemptResult, *, retry: bool
    ) -> RunAgainAt | None:
        async with self.db.transaction() as session:
            event = await repository.lock_event(session, event_pk)
            if event is None or event.status in SETTLED:
                return None
            session.add(
                WebhookAttempt(
                    event_id=event.id,
                    status_code=result.status_code,
                    duration_ms=result.duration_ms,
                    error=result.error[:300] if result.error else None,
                    response_excerpt=result.excerpt,
                )
            )
            endpoint = await repository.lock_endpoint(session, event.endpoint_id)
            if result.ok:
                event.status = EventStatus.DELIVERED
                event.delivered_at = utc_now()
                endpoint.failures_count = 0
                await _wake_next(session, event)
                return None
            self._count_failure(endpoint)
            if not retry or event.attempts >= self.settings.webhook_max_attempts:
                _settle_failed(event, result.error or "delivery failed")
                await _wake_next(session, event)
                return None
            event.status = EventStatus.PENDING
            return RunAgainAt(utc_now() + timedelta(seconds=self._backoff_s(event.attempts)))

    def _count_failure(self, endpoint: WebhookEndpoint) -> None:
        endpoint.failures_count += 1
        threshold = self.settings.webhook_disable_threshold
        if endpoint.failures_count == max(threshold // 2, 1):
            log.warning(
                "webhook endpoint failing",
                endpoint=endpoint.public_id,
                failures=endpoint.failures_count,
                disabled_at=threshold,
            )
        if endpoint.failures_count >= threshold and endpoint.is_active:
            endpoint.is_active = False
            log.error("webhook endpoint disabled", endpoint=endpoint.public_id)

    def _backoff_s(self, attempts: int) -> float:
        base = self.settings.webhook_backoff_s * 2 ** (attempts - 1)
        return float(base * random.uniform(0.8, 1.2))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=100, resolver=PublicOnlyResolver() if self.live else None
            )
            timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=False,  # a compressed answer could expand past the read limit
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _signed_headers(prepared: _Prepared) -> dict[str, str]:
    now = utc_now()
    signature = Webhook(prepared.secret).sign(prepared.message_id, now, prepared.payload)
    return {
        "content-type": "application/json",
        "accept-encoding": "identity",
        "user-agent": USER_AGENT,
        "webhook-id": prepared.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


async def _next_look(session: AsyncSession, earlier: WebhookEvent) -> datetime:
    now = utc_now()
    if earlier.status == EventStatus.PROCESSING:  # an attempt in flight
        wait_s = (now - earlier.updated_at).total_seconds()
    else:  # waiting for its own next run (a retry's backoff, or its own wait)
        run_at = await next_run(session, delivery_job_key(earlier.id))
        # Running now (or gone): look again soon.
        wait_s = 0.0 if run_at is None else (run_at - now).total_seconds()
    return now + timedelta(seconds=min(max(wait_s, ORDER_WAIT_MIN_S), ORDER_WAIT_MAX_S))


async def _wake_next(session: AsyncSession, event: WebhookEvent) -> None:
    """The next event of this one's key, waiting for it to settle, runs now."""
    next_pk = await repository.next_unsettled_pk(session, event)
    if next_pk is not None:
        await wake(session, delivery_job_key(next_pk))


def _settle_failed(event: WebhookEvent, reason: str) -> None:
    event.status = EventStatus.FAILED
    event.failure_reason = reason[:300]


async def _read_head(content: aiohttp.StreamReader, limit: int) -> bytes:
    head = bytearray()
    while len(head) < limit:
        chunk = await content.read(limit - len(head))
        if not chunk:
            break
        head += chunk
    return bytes(head)


def _excerpt(head: bytes) -> str | None:
    # PostgreSQL text cannot hold NUL characters.
    text = head.decode("utf-8", "replace").replace("\x00", "")[:EXCERPT_CHARS]
    return text or None


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        text = "timed out"
    return f"{type(exc).__name__}: {text}"[:300]


class PublicOnlyResolver(AbstractResolver):
    """An aiohttp resolver that refuses non-public addresses, so a DNS answer that changed
    since the endpoint was saved cannot steer a delivery into the private network."""

    def __init__(self) -> None:
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: Any = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            if not is_public_address(result["host"]):
                raise OSError(f"refusing to connect to non-public address {result['host']}")
        return results

    async def close(self) -> None:
        await self._resolver.close()
