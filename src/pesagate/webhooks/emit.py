"""Writing events: outbox rows in the same transaction as the change they describe, each with
a delivery job. Nothing is sent here; the worker delivers after the commit.

The outbox knows no domain: the domain that changed renders its own resource, and only when
some endpoint subscribes to the topic."""

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.db import connection_of, write
from pesagate.kit.clock import utc_now
from pesagate.kit.jsonutil import dumps
from pesagate.models import Topic, WebhookEndpoint, WebhookEvent
from pesagate.webhooks.repository import Subscriber, subscribers
from pesagate.worker.jobs import add_job

DELIVERY_JOB = "deliver_webhook"


def event_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


async def emit(
    session: AsyncSession,
    business_pk: int,
    topic: Topic,
    ordering_key: str,
    render: Callable[[], Mapping[str, Any]],
) -> None:
    """Tell every endpoint of the business subscribed to `topic`: one event each, rendered once."""
    endpoints = await subscribers(session, business_pk, topic)
    if not endpoints:
        return
    resource = render()
    for endpoint in endpoints:
        await add_event(session, endpoint, topic, ordering_key, resource)


_NEW_EVENT = insert(WebhookEvent).returning(WebhookEvent.id)


async def add_event(
    session: AsyncSession,
    endpoint: WebhookEndpoint | Subscriber,
    topic: Topic,
    ordering_key: str,
    resource: Mapping[str, Any],
) -> int:
    """One event for one endpoint: the resource plus the endpoint's challenge, and its job.
    Written with Core on the transaction's connection (no ORM instance, no flush of the
    session): pushes and callbacks write one per subscribed endpoint. Returns its row id."""
    now = utc_now()
    values = {
        "public_id": event_id(),
        "endpoint_id": endpoint.id,
        "business_id": endpoint.business_id,
        "topic": topic.value,
        "ordering_key": ordering_key,
        "payload": dumps({**resource, "challenge": endpoint.challenge}),
        "created_at": now,  # given, not defaulted: see `db.write`
        "updated_at": now,
    }
    [(event_pk,)] = (await write(await connection_of(session), _NEW_EVENT, values)).returned
    await add_job(
        session,
        DELIVERY_JOB,
        delivery_job_key(event_pk),
        now,
        {"event_pk": event_pk},
        lane=delivery_lane(endpoint.business_id, endpoint.id),
    )
    return int(event_pk)


def delivery_job_key(event_pk: int) -> str:
    return f"webhook:{event_pk}"


def delivery_lane(business_pk: int, endpoint_pk: int) -> str:
    """Each endpoint has a lane in its business's group (worker/runner.py): a business's slow
    endpoints, however many it adds, hold at most `worker_lane_slots` of a worker's slots, and
    one of them at most half, so one slow endpoint leaves its business's others room."""
    return f"webhooks:{business_pk}/endpoint:{endpoint_pk}"
