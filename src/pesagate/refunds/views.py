"""JSON of a refund: KulmiPay's chargeback object, with its invoice as payments renders it."""

from pesagate.kit.clock import rfc3339_ms
from pesagate.kit.money import format_minor
from pesagate.models import Invoice, Refund
from pesagate.payments.views import invoice_json
from pesagate.refunds import responses


def refund_json(refund: Refund, invoice: Invoice) -> responses.Chargeback:
    return {
        "id": refund.chargeback_id,
        "chargeback_id": refund.chargeback_id,
        "session_id": invoice.session_id,
        "invoice": invoice.invoice_id,
        "transaction": {
            "transaction_id": refund.chargeback_id,
            "currency": refund.currency,
            "value": format_minor(-refund.wallet_debit_minor),
            "narrative": f"Refund of {invoice.invoice_id}: {refund.reason}",
            "trans_type": "CHARGEBACK",
            "status": f"CHARGEBACK-{refund.status.value}",
            "invoice": invoice_json(invoice),
        },
        "amount": format_minor(refund.amount_minor),
        "currency": refund.currency,
        "reason": refund.reason,
        "reason_details": refund.reason_details,
        "status": refund.status,
        "resolution": refund.resolution,
        "staff_created": refund.staff_created,
        "mpesa_reference": refund.reversal_receipt,
        "created_at": rfc3339_ms(refund.created_at),
        "updated_at": rfc3339_ms(refund.updated_at),
    }
