"""Delivering events: signed (Standard Webhooks), retried with backoff and jitter, in order
per invoice, at least once.

Each event has a job. A run of the job makes one attempt: it marks the event PROCESSING and
commits, POSTs, then records the attempt and the outcome. A worker killed in between leaves
the job to run again when its lease ends, with the same `webhook-id`: the receiver may see an
event twice (it deduplicates by `webhook-id`), never zero times.
"""

import random
import time
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import structlog
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import EventStatus, WebhookAttempt, WebhookEndpoint, WebhookEvent
from pesagate.webhooks.urls import PublicOnlyResolver, UnsafeDestination, check_destination
from pesagate.worker.runner import ClaimedJob, RunAgainAt

log = structlog.get_logger("pesagate.webhooks")

ORDER_WAIT_S = 1.0  # how soon to look again when an earlier event of the same key is unsettled
USER_AGENT = "pesagate-webhooks/1"
SETTLED = (EventStatus.DELIVERED, EventStatus.FAILED)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    duration_ms: int
    error: str | None

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
            event = await _lock_event(session, event_pk)
            if event is None or event.status in SETTLED:
                return None
            if await _earlier_unsettled(session, event):
                return RunAgainAt(utc_now() + timedelta(seconds=ORDER_WAIT_S))
            endpoint = event.endpoint
            if not endpoint.is_active or endpoint.deleted_at is not None:
                _settle_failed(event, "The endpoint is disabled or deleted.")
                return None
            event.status = EventStatus.PROCESSING
            event.attempts += 1
            return _Prepared(endpoint.url, endpoint.signing_secret, event.public_id, event.payload)

    async def post(self, prepared: _Prepared) -> AttemptResult:
        started = time.perf_counter()
        try:
            await check_destination(prepared.url, self.live)
            async with self._http().post(
                prepared.url,
                data=prepared.payload.encode(),
                headers=_signed_headers(prepared),
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except UnsafeDestination as exc:
            return AttemptResult(None, _ms_since(started), str(exc))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return AttemptResult(None, _ms_since(started), _describe(exc))
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return AttemptResult(status, _ms_since(started), error)

    async def _record(
        self, event_pk: int, result: AttemptResult, *, retry: bool
    ) -> RunAgainAt | None:
        async with self.db.transaction() as session:
            event = await _lock_event(session, event_pk)
            if event is None or event.status in SETTLED:
                return None
            session.add(
                WebhookAttempt(
                    event_id=event.id,
                    status_code=result.status_code,
                    duration_ms=result.duration_ms,
                    error=result.error[:300] if result.error else None,
                )
            )
            endpoint = await _lock_endpoint(session, event.endpoint_id)
            if result.ok:
                event.status = EventStatus.DELIVERED
                event.delivered_at = utc_now()
                endpoint.failures_count = 0
                return None
            self._count_failure(endpoint)
            if not retry or event.attempts >= self.settings.webhook_max_attempts:
                _settle_failed(event, result.error or "delivery failed")
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
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
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
        "user-agent": USER_AGENT,
        "webhook-id": prepared.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


async def _lock_event(session: AsyncSession, event_pk: int) -> WebhookEvent | None:
    statement = (
        select(WebhookEvent).where(WebhookEvent.id == event_pk).with_for_update(of=WebhookEvent)
    )
    return await session.scalar(statement.execution_options(populate_existing=True))


async def _lock_endpoint(session: AsyncSession, endpoint_pk: int) -> WebhookEndpoint:
    # NO KEY UPDATE: does not block the KEY SHARE locks of new events referencing the endpoint.
    statement = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_pk)
        .with_for_update(key_share=True)
    )
    endpoint = await session.scalar(statement.execution_options(populate_existing=True))
    assert endpoint is not None
    return endpoint


async def _earlier_unsettled(session: AsyncSession, event: WebhookEvent) -> bool:
    """Order: an event waits while an earlier one of its key, to its endpoint, is unsettled."""
    earlier = select(
        exists().where(
            WebhookEvent.endpoint_id == event.endpoint_id,
            WebhookEvent.ordering_key == event.ordering_key,
            WebhookEvent.id < event.id,
            WebhookEvent.status.not_in(SETTLED),
        )
    )
    return bool(await session.scalar(earlier))


def _settle_failed(event: WebhookEvent, reason: str) -> None:
    event.status = EventStatus.FAILED
    event.failure_reason = reason[:300]


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        text = "timed out"
    return f"{type(exc).__name__}: {text}"[:300]
