"""Payments' webhook events: the invoice, rendered here, goes to the domain-agnostic outbox."""

from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.models import Invoice, Topic
from pesagate.payments.views import invoice_json
from pesagate.webhooks.emit import emit


async def collection_event(session: AsyncSession, invoice: Invoice) -> None:
    """An invoice was created or changed state: tell every subscribed endpoint."""
    await emit(
        session,
        invoice.business_id,
        Topic.COLLECTION,
        collection_key(invoice.id),
        lambda: invoice_json(invoice),
    )


def collection_key(invoice_pk: int) -> str:
    """The ordering key of an invoice's events (they go out in order)."""
    return f"invoice:{invoice_pk}"
