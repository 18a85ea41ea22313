"""Managing webhook endpoints and their events."""

import base64
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.errors import Conflict, NotFound, ValidationFailed
from pesagate.kit.clock import utc_now
from pesagate.models import EventStatus, WebhookAttempt, WebhookEndpoint, WebhookEvent
from pesagate.webhooks.emit import DELIVERY_JOB
from pesagate.webhooks.schemas import EndpointCreate, EndpointUpdate
from pesagate.webhooks.urls import UnsafeDestination, check_destination
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


async def create_endpoint(
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


async def find_endpoint(
    session: AsyncSession, business_pk: int, public_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.public_id == public_id,
        WebhookEndpoint.business_id == business_pk,
        WebhookEndpoint.deleted_at.is_(None),
    )
    if lock:
        statement = statement.with_for_update()
    endpoint = await session.scalar(statement)
    if endpoint is None:
        raise NotFound("No webhook matches the given query.")
    return endpoint


async def update_endpoint(endpoint: WebhookEndpoint, change: EndpointUpdate, live: bool) -> None:
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


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Soft: its events and their attempt log stay readable; nothing more is sent."""
    endpoint.deleted_at = utc_now()
    endpoint.is_active = False


async def find_event(session: AsyncSession, business_pk: int, public_id: str) -> WebhookEvent:
    event = await session.scalar(
        select(WebhookEvent)
        .where(WebhookEvent.public_id == public_id, WebhookEvent.business_id == business_pk)
        .with_for_update(of=WebhookEvent)
    )
    if event is None:
        raise NotFound("No webhook event matches the given query.")
    return event


async def replay(session: AsyncSession, event: WebhookEvent) -> None:
    """A FAILED event goes back to PENDING with its attempts reset and the same id."""
    if event.status != EventStatus.FAILED:
        raise Conflict("Only FAILED events can be replayed.")
    if not event.endpoint.is_active or event.endpoint.deleted_at is not None:
        raise Conflict("The webhook is disabled: re-enable it (PATCH is_active) first.")
    event.status = EventStatus.PENDING
    event.attempts = 0
    event.failure_reason = None
    event.updated_at = utc_now()
    await schedule(session, DELIVERY_JOB, f"webhook:{event.id}", utc_now(), {"event_pk": event.id})


async def attempts_of(
    session: AsyncSession, event_pks: list[int]
) -> dict[int, list[WebhookAttempt]]:
    attempts: dict[int, list[WebhookAttempt]] = {pk: [] for pk in event_pks}
    rows = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.event_id.in_(event_pks))
        .order_by(WebhookAttempt.id)
    )
    for attempt in rows:
        attempts[attempt.event_id].append(attempt)
    return attempts
