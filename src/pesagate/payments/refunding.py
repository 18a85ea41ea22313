"""What refunds need of an invoice (the refunds domain, a layer above, calls these inside its
own transactions): the invoice locked, and its `refunded_minor` kept, which decides the payment
session's `refundable` flag."""

from pesagate.db import AnySession, AsyncSession
from pesagate.models import Invoice, InvoiceState
from pesagate.payments import repository


async def invoice_to_refund(
    session: AsyncSession, business_pk: int, invoice_id: str
) -> Invoice | None:
    """The business's invoice, locked until the transaction ends: refunds of one invoice are
    decided one at a time."""
    return await repository.lock_invoice(session, invoice_id=invoice_id, business_id=business_pk)


async def refunded_invoice(session: AsyncSession, invoice_pk: int) -> Invoice:
    """A refund's invoice, locked."""
    invoice = await repository.lock_invoice(session, id=invoice_pk)
    assert invoice is not None
    return invoice


def left_to_refund(invoice: Invoice) -> int:
    """Cents of the payment not yet given back nor being given back."""
    if invoice.state != InvoiceState.COMPLETE:
        return 0
    return max(invoice.value_minor - invoice.refunded_minor, 0)


def reserve_refund(invoice: Invoice, amount_minor: int) -> None:
    """Count a new refund against the invoice (the caller holds its lock and checked
    `left_to_refund`)."""
    invoice.refunded_minor += amount_minor


def cancel_refund(invoice: Invoice, amount_minor: int) -> None:
    """A refund that gave nothing back no longer counts."""
    invoice.refunded_minor = max(invoice.refunded_minor - amount_minor, 0)


async def invoices_by_pk(session: AnySession, invoice_pks: set[int]) -> dict[int, Invoice]:
    """Refunds' invoices, for rendering (with their customers and wallets)."""
    if not invoice_pks:
        return {}
    return {
        invoice.id: invoice for invoice in await repository.invoices_by_pk(session, invoice_pks)
    }
