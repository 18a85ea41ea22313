"""The payments API's answers (SPEC sections 2 and 4), as declared in the OpenAPI document."""

from typing import Literal

from typing_extensions import TypedDict

from pesagate.kit.responses import Money, Paginated, Timestamp, closed
from pesagate.models import InvoiceState, LineStatus, Tariff


@closed
class Invoice(TypedDict):
    invoice_id: str
    id: str  # the invoice_id again, as the reference API emits it
    state: InvoiceState
    provider: str
    value: Money
    charges: Money
    net_amount: Money
    currency: str
    account: str
    api_ref: str
    mobile_tarrif: Tariff
    wallet_id: str
    clearing_status: LineStatus | None
    mpesa_reference: str | None
    host: str
    retry_count: int
    failed_reason: str | None
    failed_code: str | None
    failed_code_link: None
    created_at: Timestamp
    updated_at: Timestamp


@closed
class Customer(TypedDict):
    customer_id: str
    phone_number: str
    email: str | None
    first_name: str | None
    last_name: str | None
    country: str
    zipcode: str | None
    provider: str
    created_at: Timestamp
    updated_at: Timestamp


@closed
class PaymentLinkSummary(TypedDict):
    """The payment link an invoice was paid through (`meta.payment_link` in status answers;
    the fields of KulmiPay's status schema). Rendered by pesagate.checkout, which owns links."""

    id: str
    title: str
    is_active: bool
    redirect_url: str | None
    amount: int  # whole shillings, 0 when the payer chooses (as the reference schema has it)
    usage_limit: int
    qrcode_file: str | None
    url: str
    created_at: Timestamp
    updated_at: Timestamp


@closed
class PaymentSession(TypedDict):
    """What an STK push or a collection answers."""

    id: str
    invoice: Invoice
    customer: Customer
    payment_link: PaymentLinkSummary | None
    customer_comment: None
    refundable: bool
    created_at: Timestamp
    updated_at: Timestamp


@closed
class PaymentStatus(TypedDict):
    invoice: Invoice
    meta: PaymentSession


@closed
class AmountEstimate(TypedDict):
    amount: Money
    charges: Money
    value: Money
    net_amount: Money
    tarrif: Tariff


InvoicePage = Paginated[Invoice]


@closed
class CallbackAccepted(TypedDict):
    """What Daraja is told for every stored callback, duplicates included."""

    ResultCode: Literal[0]
    ResultDesc: Literal["Accepted"]


@closed
class SessionPayment(TypedDict):
    """A payment inside a checkout session (`POST /payment/collection/` with checkout_id):
    the invoice, and a signature for its status calls."""

    invoice: Invoice
    signature: str
