"""JSON shapes of SPEC section 4: Invoice, Customer, payment session."""

from typing import Any

from pesagate.kit.clock import rfc3339_ms
from pesagate.kit.money import format_minor
from pesagate.models import Customer, Invoice, InvoiceState


def invoice_json(invoice: Invoice) -> dict[str, Any]:
    return {
        "invoice_id": invoice.invoice_id,
        "id": invoice.invoice_id,
        "state": invoice.state,
        "provider": invoice.provider,
        "value": format_minor(invoice.value_minor),
        "charges": format_minor(invoice.charges_minor),
        "net_amount": format_minor(invoice.net_amount_minor),
        "currency": invoice.currency,
        "account": invoice.account,
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


def customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "customer_id": customer.customer_id,
        "phone_number": customer.phone_number,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "country": customer.country,
        "zipcode": customer.zipcode,
        "provider": customer.provider,
        "created_at": rfc3339_ms(customer.created_at),
        "updated_at": rfc3339_ms(customer.updated_at),
    }


def session_json(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.session_id,
        "invoice": invoice_json(invoice),
        "customer": customer_json(invoice.customer),
        "payment_link": None,
        "customer_comment": None,
        "refundable": invoice.state == InvoiceState.COMPLETE,
        "created_at": rfc3339_ms(invoice.created_at),
        "updated_at": rfc3339_ms(invoice.updated_at),
    }


def status_json(invoice: Invoice) -> dict[str, Any]:
    return {"invoice": invoice_json(invoice), "meta": session_json(invoice)}
