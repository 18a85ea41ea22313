"""Managing webhook endpoints and their events: the use cases of the endpoints API and of
`pesagate webhook`. Each opens its own transaction (or read)."""

import base64
import secrets
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.db import Database
from pesagate.errors import Conflict, NotFound, ValidationFailed
from pesagate.idempotency.service import Claim, complete_in
from pesagate.kit.clock import utc_now
from pesagate.kit.pagination import Page
from pesagate.merchants.service import find_business
from pesagate.models import EventStatus, Topic, WebhookAttempt, WebhookEndpoint, WebhookEvent
from pesagate.webhooks import repository, responses
from pesagate.webhooks.emit import DELIVERY_JOB, add_event, delivery_job_key, delivery_lane
from pesagate.webhooks.schemas import EndpointCreate, EndpointUpdate
from pesagate.webhooks.urls import UnsafeDestination, check_destination
from pesagate.webhooks.views import endpoint_json, event_json
from pesagate.worker.jobs import schedule

FLAGS = ("collection_event", "send_money_event", "reversal_event", "wallet_transfer_event")


def new_signing_secret() -> str:
    """Standard Webhooks format: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def checked_url(url: str, live: bool) -> str:
    try:
        await check_destination(url, live)
    except UnsafeDestination as exc:
        raise ValidationFailed.field("endpoint", str(exc)) from None
    return url


async def list_endpoints(
    db: Database, business_pk: int, page: Page
) -> tuple[int, list[responses.WebhookEndpoint]]:
    async with db.read() as session:
        count, endpoints = await repository.endpoints_page(session, business_pk, page)
    return count, [endpoint_json(endpoint) for endpoint in endpoints]


async def create_endpoint(
    db: Database, business_pk: int, request: EndpointCreate, live: bool, held: Claim | None
) -> responses.CreatedWebhookEndpoint:
    """The new endpoint; its answer alone carries the signing secret."""
    async with db.transaction() as session:
        endpoint = await add_endpoint(session, business_pk, request, live)
        answer: responses.CreatedWebhookEndpoint = {
            **endpoint_json(endpoint),
            "signing_secret": endpoint.signing_secret,
        }
        await complete_in(session, held, answer)
    return answer


async def add_endpoint(
    session: AsyncSession, business_pk: int, request: EndpointCreate, live: bool
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        public_id=str(uuid.uuid4()),
        business_id=business_pk,
        url=await checked_url(request.endpoint, live),
        challenge=request.challenge,
        signing_secret=new_signing_secret(),
        **{flag: bool(getattr(request, flag)) for flag in FLAGS},
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def endpoint_detail(
    db: Database, business_pk: int, webhook_id: str
) -> responses.WebhookEndpoint:
    async with db.read() as session:
        return endpoint_json(await _endpoint(session, business_pk, webhook_id))


async def update_endpoint(
    db: Database, business_pk: int, webhook_id: str, change: EndpointUpdate, live: bool
) -> responses.WebhookEndpoint:
    async with db.transaction() as session:
        endpoint = await _endpoint(session, business_pk, webhook_id, lock=True)
        if change.endpoint is not None:
            endpoint.url = await checked_url(change.endpoint, live)
        if change.challenge is not None:
            endpoint.challenge = change.challenge
        for flag in FLAGS:
            if (value := getattr(change, flag)) is not None:
                setattr(endpoint, flag, value)
        if change.is_active is not None:
            if change.is_active and not endpoint.is_active:
                endpoint.failures_count = 0
            endpoint.is_active = change.is_active
        endpoint.updated_at = utc_now()
    return endpoint_json(endpoint)


async def delete_endpoint(db: Database, business_pk: int, webhook_id: str) -> None:
    async with db.transaction() as session:
        _delete(await _endpoint(session, business_pk, webhook_id, lock=True))


def _delete(endpoint: WebhookEndpoint) -> None:
    """Soft: its events and their attempt log stay readable; nothing more is sent."""
    endpoint.deleted_at = utc_now()
    endpoint.is_active = False


async def _endpoint(
    session: AsyncSession, business_pk: int, public_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    endpoint = await repository.endpoint_by_public_id(session, public_id, business_pk, lock=lock)
    if endpoint is None:
        raise NotFound("No webhook matches the given query.")
    return endpoint


async def list_events(
    db: Database, business_pk: int, page: Page, status: str | None, topic: str | None
) -> tuple[int, list[responses.WebhookEvent]]:
    """The event log, newest first, each event with its attempts."""
    if status and status not in EventStatus.__members__:
        raise ValidationFailed.field("status", f'"{status}" is not a valid choice.')
    wanted = EventStatus(status) if status else None
    async with db.read() as session:
        count, events = await repository.events_page(session, business_pk, page, wanted, topic)
        attempts = await repository.attempts_of(session, [event.id for event in events])
    return count, [event_json(event, attempts[event.id]) for event in events]


async def replay_event(
    db: Database, business_pk: int, event_id: str, *, delivered_too: bool = False
) -> responses.WebhookEvent:
    """A FAILED event (or, with `delivered_too`, a DELIVERED one: the dashboard's "resend", for a
    receiver that lost what it got) goes back to PENDING with its attempts reset and the same
    id, so a receiver that deduplicates by `webhook-id` still can."""
    replayable = (
        (EventStatus.FAILED, EventStatus.DELIVERED) if delivered_too else (EventStatus.FAILED,)
    )
    async with db.transaction() as session:
        event = await repository.lock_business_event(session, business_pk, event_id)
        if event is None:
            raise NotFound("No webhook event matches the given query.")
        if event.status not in replayable:
            raise Conflict(
                "Only FAILED or DELIVERED events can be sent again."
                if delivered_too
                else "Only FAILED events can be replayed."
            )
        if not event.endpoint.is_active or event.endpoint.deleted_at is not None:
            raise Conflict("The webhook is disabled: re-enable it (PATCH is_active) first.")
        reopen(event)
        await schedule(
            session,
            DELIVERY_JOB,
            delivery_job_key(event.id),
            utc_now(),
            {"event_pk": event.id},
            lane=delivery_lane(event.business_id, event.endpoint_id),
        )
        attempts = await repository.attempts_of(session, [event.id])
        return event_json(event, attempts[event.id])


def reopen(event: WebhookEvent) -> None:
    """Back to PENDING with its attempts reset; it keeps its id (`webhook-id`)."""
    event.status = EventStatus.PENDING
    event.attempts = 0
    event.failure_reason = None
    event.updated_at = utc_now()


async def delivery_revived(session: AsyncSession, payload: dict[str, Any]) -> None:
    """A dead delivery job runs again (`pesagate jobs retry`): its event, failed when the job
    died, is delivered again (as a replay would, the endpoint's state aside)."""
    event = await repository.lock_event(session, int(payload["event_pk"]))
    if event is not None and event.status == EventStatus.FAILED:
        reopen(event)


# `pesagate webhook …`: endpoints named by business_id or exact name, or by their own id.


async def add_merchant_endpoint(
    db: Database, merchant: str, request: EndpointCreate, live: bool
) -> WebhookEndpoint:
    async with db.transaction() as session:
        business = await find_business(session, merchant)
        return await add_endpoint(session, business.id, request, live)


async def merchant_endpoints(db: Database, merchant: str) -> list[WebhookEndpoint]:
    async with db.read() as session:
        business = await find_business(session, merchant)
        return await repository.endpoints_of(session, business.id)


async def remove_endpoint(db: Database, webhook_id: str) -> bool:
    """False if no live endpoint has this id."""
    async with db.transaction() as session:
        endpoint = await repository.endpoint_by_public_id(session, webhook_id)
        if endpoint is None:
            return False
        _delete(endpoint)
        return True


async def add_test_event(db: Database, webhook_id: str) -> WebhookEvent | None:
    """A test event for the endpoint (None if no live endpoint has this id), to send at once."""
    async with db.transaction() as session:
        endpoint = await repository.endpoint_by_public_id(session, webhook_id)
        if endpoint is None:
            return None
        return await _test_event(session, endpoint)


async def send_test_event(db: Database, business_pk: int, webhook_id: str) -> WebhookEvent:
    """The dashboard's Test button: a signed test event, delivered by the worker."""
    async with db.transaction() as session:
        return await _test_event(session, await _endpoint(session, business_pk, webhook_id))


async def _test_event(session: AsyncSession, endpoint: WebhookEndpoint) -> WebhookEvent:
    resource = {
        "topic": Topic.TEST.value,
        "message": "pesagate test event",
        "sent_at": utc_now().isoformat(),
    }
    event_pk = await add_event(session, endpoint, Topic.TEST, f"test:{endpoint.id}", resource)
    event = await session.get(WebhookEvent, event_pk)
    assert event is not None
    return event


async def deliveries_about(
    db: Database, business_pk: int, ordering_key: str
) -> list[tuple[WebhookEvent, list[WebhookAttempt]]]:
    """The business's events about one thing, each with its delivery attempts."""
    async with db.read() as session:
        events = await repository.events_by_key(session, business_pk, ordering_key)
        attempts = await repository.attempts_of(session, [event.id for event in events])
    return [(event, attempts[event.id]) for event in events]
