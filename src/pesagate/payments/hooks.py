"""What payments offers other domains through the composition root (`pesagate.services`),
which hands these to the ledger: the ledger never imports payments."""

from collections.abc import Mapping
from typing import Any

from pesagate.db import AnySession, AsyncSession
from pesagate.payments import repository
from pesagate.payments.views import invoice_json


async def invoices_json(session: AnySession, invoice_pks: set[int]) -> dict[int, Mapping[str, Any]]:
    """Invoices as a wallet statement line embeds them, by pk, read in the caller's session
    (its snapshot)."""
    if not invoice_pks:
        return {}
    invoices = await repository.invoices_by_pk(session, invoice_pks)
    return {invoice.id: invoice_json(invoice) for invoice in invoices}


async def mark_cleared(session: AsyncSession, invoice_pk: int) -> None:
    """The ledger released a collection's clearing: the invoice shows the money AVAILABLE,
    in the release's transaction."""
    await repository.mark_cleared(session, invoice_pk)
