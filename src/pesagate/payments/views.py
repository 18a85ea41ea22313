"""JSON shapes of SPEC section 4: Invoice, Customer, payment session.

They render a loaded invoice (with its customer and wallet) or its read-only view, the
status path's lighter stand-in.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pesagate.kit.clock import rfc3339_ms
from pesagate.kit.money import format_minor
from pesagate.kit.phones import mask_msisdn
from pesagate.models import Customer, Invoice, InvoiceState, LineStatus, Tariff
from pesagate.payments import responses

if TYPE_CHECKING:  # it holds a WalletRef
    from pesagate.payments.locked import LockedInvoice


@dataclass(frozen=True, slots=True)
class CustomerView:
    """What is rendered of a customer. Field names are the `customers` columns'."""

    customer_id: str
    phone_number: str
    email: str | None
    first_name: str | None
    last_name: str | None
    country: str
    zipcode: str | None
    provider: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WalletRef:
    wallet_id: str  # the public id


@dataclass(frozen=True, slots=True)
class InvoiceView:
    """What is rendered of an invoice, read without building an ORM instance. Field names
    are the `invoices` columns' (the status query selects them by name, after the customer's
    and the wallet's)."""

    customer: CustomerView
    wallet: WalletRef
    invoice_id: str
    session_id: str
    state: InvoiceState
    provider: str
    value_minor: int
    charges_minor: int
    net_amount_minor: int
    refunded_minor: int
    currency: str
    account: str
    api_ref: str
    mobile_tarrif: Tariff
    clearing_status: LineStatus | None
    mpesa_reference: str | None
    host: str
    retry_count: int
    failed_reason: str | None
    failed_code: str | None
    created_at: datetime
    updated_at: datetime
    checkout_session_id: int | None = None
    payment_link_id: int | None = None


def invoice_json(
    invoice: "Invoice | LockedInvoice | InvoiceView", *, personal: bool = True
) -> responses.Invoice:
    """`personal=False`: the paying phone masked (status asked with the public key alone)."""
    return {
        "invoice_id": invoice.invoice_id,
        "id": invoice.invoice_id,
        "state": invoice.state,
        "provider": invoice.provider,
        "value": format_minor(invoice.value_minor),
        "charges": format_minor(invoice.charges_minor),
        "net_amount": format_minor(invoice.net_amount_minor),
        "currency": invoice.currency,
        "account": invoice.account if personal else mask_msisdn(invoice.account),
        "api_ref": invoice.api_ref,
        "mobile_tarrif": invoice.mobile_tarrif,
        "wallet_id": invoice.wallet.wallet_id,
        "clearing_status": invoice.clearing_status,
        "mpesa_reference": invoice.mpesa_reference,
        "host": invoice.host,
        "retry_count": invoice.retry_count,
        "failed_reason": invoice.failed_reason,
        "failed_code": invoice.failed_code,
        "failed_code_link": None,
        "created_at": rfc3339_ms(invoice.created_at),
        "updated_at": rfc3339_ms(invoice.updated_at),
    }


def customer_json(
    customer: Customer | CustomerView, *, personal: bool = True
) -> responses.Customer:
    """`personal=False`: no name or email, the phone masked."""
    return {
        "customer_id": customer.customer_id,
        "phone_number": customer.phone_number if personal else mask_msisdn(customer.phone_number),
        "email": customer.email if personal else None,
        "first_name": customer.first_name if personal else None,
        "last_name": customer.last_name if personal else None,
        "country": customer.country,
        "zipcode": customer.zipcode,
        "provider": customer.provider,
        "created_at": rfc3339_ms(customer.created_at),
        "updated_at": rfc3339_ms(customer.updated_at),
    }


def session_json(
    invoice: Invoice | InvoiceView,
    *,
    personal: bool = True,
    payment_link: responses.PaymentLinkSummary | None = None,
    rendered: responses.Invoice | None = None,
) -> responses.PaymentSession:
    """`payment_link`: the link the invoice was paid through (rendered by checkout, which owns
    links, and handed in by the caller). `rendered`: the invoice already rendered alike."""
    return {
        "id": invoice.session_id,
        "invoice": rendered or invoice_json(invoice, personal=personal),
        "customer": customer_json(invoice.customer, personal=personal),
        "payment_link": payment_link,
        "customer_comment": None,
        # True while some of a completed payment is left to give back (refunds).
        "refundable": invoice.state == InvoiceState.COMPLETE
        and invoice.refunded_minor < invoice.value_minor,
        "created_at": rfc3339_ms(invoice.created_at),
        "updated_at": rfc3339_ms(invoice.updated_at),
    }


def status_json(
    invoice: Invoice | InvoiceView,
    *,
    personal: bool = True,
    payment_link: responses.PaymentLinkSummary | None = None,
) -> responses.PaymentStatus:
    rendered = invoice_json(invoice, personal=personal)  # shown twice: serialised twice
    return {
        "invoice": rendered,
        "meta": session_json(
            invoice, personal=personal, payment_link=payment_link, rendered=rendered
        ),
    }
