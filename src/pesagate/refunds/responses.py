"""The chargebacks API's answers (KulmiPay's chargeback object), as declared in OpenAPI."""

from typing_extensions import TypedDict

from pesagate.kit.responses import Money, Paginated, Timestamp, closed
from pesagate.models import RefundStatus
from pesagate.payments.responses import Invoice


@closed
class ChargebackTransaction(TypedDict):
    """The refund as a line of the wallet's statement would show it."""

    transaction_id: str
    currency: str
    value: Money  # negative: money leaving the wallet
    narrative: str
    trans_type: str  # "CHARGEBACK"
    status: str  # "CHARGEBACK-PENDING", "CHARGEBACK-COMPLETED", ...
    invoice: Invoice


@closed
class Chargeback(TypedDict):
    id: str  # the chargeback_id again, as IntaSend names it
    chargeback_id: str
    session_id: str  # the payment session of the invoice refunded
    invoice: str  # the invoice_id refunded
    transaction: ChargebackTransaction
    amount: Money
    currency: str
    reason: str
    reason_details: str | None
    status: RefundStatus
    resolution: str  # why it was CANCELLED or DISPUTED; "" otherwise
    staff_created: bool
    mpesa_reference: str | None  # the reversal's own M-Pesa receipt, once COMPLETED
    created_at: Timestamp
    updated_at: Timestamp


ChargebackPage = Paginated[Chargeback]
