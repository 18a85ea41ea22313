"""The webhooks tables: endpoints, their events and the attempt log. Every statement on them
is here; callers pass their session (the transaction is theirs)."""

from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.db import AnySession, connection_of, select_rows
from pesagate.kit.pagination import Page
from pesagate.models import EventStatus, Topic, WebhookAttempt, WebhookEndpoint, WebhookEvent

SETTLED = (EventStatus.DELIVERED, EventStatus.FAILED)
TOPIC_FLAGS = {
    Topic.COLLECTION: WebhookEndpoint.collection_event,
    Topic.SEND_MONEY: WebhookEndpoint.send_money_event,
    Topic.REVERSAL: WebhookEndpoint.reversal_event,
    Topic.WALLET_TRANSFER: WebhookEndpoint.wallet_transfer_event,
}


class Subscriber(NamedTuple):
    """What an event needs of its endpoint; read on every state change, so no ORM instance."""

    id: int
    business_id: int
    challenge: str


_SUBSCRIBERS = {
    topic: select(WebhookEndpoint.id, WebhookEndpoint.business_id, WebhookEndpoint.challenge).where(
        WebhookEndpoint.business_id == bindparam("business_pk"),
        WebhookEndpoint.is_active.is_(True),
        WebhookEndpoint.deleted_at.is_(None),
        flag.is_(True),
    )
    for topic, flag in TOPIC_FLAGS.items()
}


async def subscribers(session: AsyncSession, business_pk: int, topic: Topic) -> list[Subscriber]:
    """The endpoints to tell. A Core statement built once, on the transaction's connection."""
    connection = await connection_of(session)
    rows = await select_rows(connection, _SUBSCRIBERS[topic], {"business_pk": business_pk})
    return [Subscriber(*row) for row in rows]


def _live_endpoints_of(business_pk: int) -> Select[WebhookEndpoint]:
    return select(WebhookEndpoint).where(
        WebhookEndpoint.business_id == business_pk, WebhookEndpoint.deleted_at.is_(None)
    )


async def endpoints_page(
    session: AsyncSession, business_pk: int, page: Page
) -> tuple[int, list[WebhookEndpoint]]:
    statement = _live_endpoints_of(business_pk)
    count = await _count(session, statement)
    endpoints = await session.scalars(
        statement.order_by(WebhookEndpoint.id).offset(page.offset).limit(page.size)
    )
    return count, list(endpoints)


async def endpoints_of(session: AsyncSession, business_pk: int) -> list[WebhookEndpoint]:
    endpoints = await session.scalars(_live_endpoints_of(business_pk).order_by(WebhookEndpoint.id))
    return list(endpoints)


async def endpoint_by_public_id(
    session: AsyncSession, public_id: str, business_pk: int | None = None, *, lock: bool = False
) -> WebhookEndpoint | None:
    """A live (not deleted) endpoint; of this business if one is given."""
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.public_id == public_id, WebhookEndpoint.deleted_at.is_(None)
    )
    if business_pk is not None:
        statement = statement.where(WebhookEndpoint.business_id == business_pk)
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement)


async def lock_endpoint(session: AsyncSession, endpoint_pk: int) -> WebhookEndpoint:
    # NO KEY UPDATE: does not block the KEY SHARE locks of new events referencing the endpoint.
    statement = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_pk)
        .with_for_update(key_share=True)
    )
    endpoint = await session.scalar(statement.execution_options(populate_existing=True))
    assert endpoint is not None
    return endpoint


async def events_page(
    session: AsyncSession,
    business_pk: int,
    page: Page,
    status: EventStatus | None,
    topic: str | None,
) -> tuple[int, list[WebhookEvent]]:
    """A business's events, newest first."""
    statement = select(WebhookEvent).where(WebhookEvent.business_id == business_pk)
    if status is not None:
        statement = statement.where(WebhookEvent.status == status)
    if topic:
        statement = statement.where(WebhookEvent.topic == topic)
    count = await _count(session, statement)
    events = await session.scalars(
        statement.order_by(WebhookEvent.id.desc()).offset(page.offset).limit(page.size)
    )
    return count, list(events)


async def lock_business_event(
    session: AsyncSession, business_pk: int, public_id: str
) -> WebhookEvent | None:
    return await session.scalar(
        select(WebhookEvent)
        .where(WebhookEvent.public_id == public_id, WebhookEvent.business_id == business_pk)
        .with_for_update(of=WebhookEvent)
    )


async def lock_event(session: AsyncSession, event_pk: int) -> WebhookEvent | None:
    statement = (
        select(WebhookEvent).where(WebhookEvent.id == event_pk).with_for_update(of=WebhookEvent)
    )
    return await session.scalar(statement.execution_options(populate_existing=True))


async def earlier_unsettled(session: AsyncSession, event: WebhookEvent) -> WebhookEvent | None:
    """The latest earlier event of this one's key, to its endpoint, not yet settled."""
    earlier = (
        select(WebhookEvent)
        .where(
            WebhookEvent.endpoint_id == event.endpoint_id,
            WebhookEvent.ordering_key == event.ordering_key,
            WebhookEvent.id < event.id,
            WebhookEvent.status.not_in(SETTLED),
        )
        .order_by(WebhookEvent.id.desc())
        .limit(1)
    )
    return await session.scalar(earlier)


async def next_unsettled_pk(session: AsyncSession, event: WebhookEvent) -> int | None:
    """The first later event of this one's key, to its endpoint, not yet settled."""
    return await session.scalar(
        select(func.min(WebhookEvent.id)).where(
            WebhookEvent.endpoint_id == event.endpoint_id,
            WebhookEvent.ordering_key == event.ordering_key,
            WebhookEvent.id > event.id,
            WebhookEvent.status.not_in(SETTLED),
        )
    )


async def attempts_of(session: AnySession, event_pks: list[int]) -> dict[int, list[WebhookAttempt]]:
    attempts: dict[int, list[WebhookAttempt]] = {pk: [] for pk in event_pks}
    rows = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.event_id.in_(event_pks))
        .order_by(WebhookAttempt.id)
    )
    for attempt in rows:
        attempts[attempt.event_id].append(attempt)
    return attempts


async def _count(session: AsyncSession, statement: Any) -> int:
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    return int(total or 0)


async def events_by_key(
    session: AnySession, business_pk: int, ordering_key: str
) -> list[WebhookEvent]:
    """The business's events about one thing (an invoice: `invoice:<pk>`), oldest first."""
    rows = await session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.business_id == business_pk, WebhookEvent.ordering_key == ordering_key)
        .order_by(WebhookEvent.id)
    )
    return list(rows.all())
