"""Payments' webhook events: the invoice, rendered here, goes to the domain-agnostic outbox."""

from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.models import Topic
from pesagate.payments.locked import InvoiceRecord
from pesagate.payments.views import InvoiceView, invoice_json
from pesagate.webhooks.emit import emit


async def collection_event(
    session: AsyncSession, business_pk: int, invoice_pk: int, invoice: InvoiceRecord | InvoiceView
) -> None:
    """An invoice was created or changed state: tell every subscribed endpoint."""
    await emit(
        session,
        business_pk,
        Topic.COLLECTION,
        collection_key(invoice_pk),
        lambda: invoice_json(invoice),
    )


def collection_key(invoice_pk: int) -> str:
    """The ordering key of an invoice's events (they go out in order)."""
    return f"invoice:{invoice_pk}"
