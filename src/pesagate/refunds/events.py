"""`reversal_event` webhooks: the chargeback as the API shows it, on creation and on every
status change, in the transaction of the change. Ordered with the invoice's own events
(`invoice:<pk>`): a refund's progress is part of its payment's history."""

from pesagate.db import AsyncSession
from pesagate.models import Invoice, Refund, Topic
from pesagate.refunds.views import refund_json
from pesagate.webhooks.emit import emit


async def reversal_event(session: AsyncSession, refund: Refund, invoice: Invoice) -> None:
    await emit(
        session,
        refund.business_id,
        Topic.REVERSAL,
        f"invoice:{invoice.id}",
        lambda: refund_json(refund, invoice),
    )
