"""`webhooks.emit.add_event`: an outbox row and its delivery job, written with Core on the
transaction's connection (no ORM instance), committed or rolled back with the change they
describe. On both databases."""

import orjson
import pytest
from sqlalchemy import select

from pesagate.db import Database
from pesagate.models import Environment, EventStatus, Job, Topic, WebhookEndpoint, WebhookEvent
from pesagate.services import create_merchant
from pesagate.webhooks.emit import DELIVERY_JOB, add_event, delivery_job_key, delivery_lane
from tests.fixtures.webhooks import stored_endpoint


async def endpoint_of(db: Database) -> WebhookEndpoint:
    async with db.transaction() as session:
        merchant = await create_merchant(session, "Shop", Environment.SANDBOX)
        return await stored_endpoint(
            session, merchant.business.id, "https://example.com/hook", "we_outbox", "the-challenge"
        )


async def test_the_event_and_its_job_are_written_without_orm_instances(db):
    endpoint = await endpoint_of(db)
    async with db.transaction() as session:
        first = await add_event(session, endpoint, Topic.COLLECTION, "invoice:1", {"n": 1})
        second = await add_event(session, endpoint, Topic.COLLECTION, "invoice:1", {"n": 2})
        assert not session.sync_session.identity_map
    assert second > first  # events of one key go out in the order of their ids
    async with db.read() as session:
        event = await session.get(WebhookEvent, first)
        job = await session.scalar(select(Job).where(Job.key == delivery_job_key(first)))
    assert event is not None and job is not None
    assert (event.endpoint_id, event.business_id, event.topic, event.ordering_key) == (
        endpoint.id,
        endpoint.business_id,
        Topic.COLLECTION.value,
        "invoice:1",
    )
    assert orjson.loads(event.payload) == {"n": 1, "challenge": "the-challenge"}
    assert (event.status, event.attempts, event.public_id[:4]) == (EventStatus.PENDING, 0, "msg_")
    assert event.created_at == event.updated_at
    assert (job.kind, orjson.loads(job.payload)) == (DELIVERY_JOB, {"event_pk": first})
    assert job.lane == delivery_lane(endpoint.business_id, endpoint.id)


async def test_the_event_rolls_back_with_its_transaction(db):
    endpoint = await endpoint_of(db)
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as session:
            await add_event(session, endpoint, Topic.COLLECTION, "invoice:1", {"n": 1})
            _ = 1 / 0
    async with db.read() as session:
        assert list(await session.scalars(select(WebhookEvent))) == []
        assert list(await session.scalars(select(Job))) == []
