"""Writing events: outbox rows in the same transaction as the change they describe, each with
a delivery job. Nothing is sent here; the worker delivers after the commit."""

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.kit.clock import utc_now
from pesagate.kit.jsonutil import dumps
from pesagate.kit.money import format_minor
from pesagate.ledger.transfers import Transfer, transfer_hooks
from pesagate.ledger.views import transaction_json, wallet_json
from pesagate.models import Invoice, LedgerAccount, Topic, WebhookEndpoint, WebhookEvent
from pesagate.payments.views import invoice_json
from pesagate.worker.jobs import add_job

DELIVERY_JOB = "deliver_webhook"
TOPIC_FLAGS = {
    Topic.COLLECTION: WebhookEndpoint.collection_event,
    Topic.SEND_MONEY: WebhookEndpoint.send_money_event,
    Topic.REVERSAL: WebhookEndpoint.reversal_event,
    Topic.WALLET_TRANSFER: WebhookEndpoint.wallet_transfer_event,
}


def event_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


async def subscribers(
    session: AsyncSession, business_pk: int, topic: Topic
) -> list[WebhookEndpoint]:
    endpoints = await session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.business_id == business_pk,
            WebhookEndpoint.is_active.is_(True),
            WebhookEndpoint.deleted_at.is_(None),
            TOPIC_FLAGS[topic].is_(True),
        )
    )
    return list(endpoints)


async def add_event(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    topic: Topic,
    ordering_key: str,
    resource: dict[str, Any],
) -> WebhookEvent:
    """One event for one endpoint: the resource plus the endpoint's challenge, and its job."""
    event = WebhookEvent(
        public_id=event_id(),
        endpoint_id=endpoint.id,
        business_id=endpoint.business_id,
        topic=topic.value,
        ordering_key=ordering_key,
        payload=dumps({**resource, "challenge": endpoint.challenge}),
    )
    session.add(event)
    await session.flush()
    add_job(session, DELIVERY_JOB, f"webhook:{event.id}", utc_now(), {"event_pk": event.id})
    return event


async def collection_event(session: AsyncSession, invoice: Invoice) -> None:
    """An invoice was created or changed state: tell every subscribed endpoint."""
    resource = None
    for endpoint in await subscribers(session, invoice.business_id, Topic.COLLECTION):
        resource = resource or invoice_json(invoice)
        await add_event(session, endpoint, Topic.COLLECTION, f"invoice:{invoice.id}", resource)


async def wallet_transfer_event(session: AsyncSession, moved: Transfer) -> None:
    endpoints = await subscribers(session, moved.source.business_id, Topic.WALLET_TRANSFER)
    if not endpoints:
        return
    accounts = {
        account.id: account
        for account in await session.scalars(
            select(LedgerAccount).where(
                LedgerAccount.id.in_(
                    [moved.source_line.account_id, moved.destination_line.account_id]
                )
            )
        )
    }
    resource = {
        "from_data": {
            "wallet": wallet_json(moved.source, accounts[moved.source_line.account_id]),
            "transaction": transaction_json(moved.source_line, moved.source, None),
        },
        "to_data": {
            "wallet": wallet_json(moved.destination, accounts[moved.destination_line.account_id]),
            "transaction": transaction_json(moved.destination_line, moved.destination, None),
        },
        "amount": format_minor(moved.amount_minor),
    }
    for endpoint in endpoints:
        key = f"transfer:{moved.source_line.entry_id}"
        await add_event(session, endpoint, Topic.WALLET_TRANSFER, key, resource)


transfer_hooks.append(wallet_transfer_event)
