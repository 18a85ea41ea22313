"""The checkout API's answers, as declared in the OpenAPI document."""

from typing_extensions import TypedDict

from pesagate.kit.responses import Money, Paginated, Timestamp, closed
from pesagate.models import Tariff
from pesagate.payments.responses import Invoice


@closed
class CheckoutSession(TypedDict):
    """A hosted checkout session (`POST /checkout/`, `/checkout/details/`)."""

    id: str
    url: str  # the express page
    signature: str  # HS256 JWT: audience the id, scope express-checkout, one hour
    paid: bool
    amount: Money  # "0.00": the payer chooses
    currency: str
    method: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone_number: str | None
    country: str | None
    address: None
    city: None
    state: None
    zipcode: None
    api_ref: str | None
    redirect_url: str | None
    callback_url: str | None
    host: str | None
    comment: str | None
    wallet_id: str | None
    mobile_tarrif: Tariff
    card_tarrif: Tariff
    version: str | None
    unique_api_ref: bool
    payment_link: str | None  # the id of the link that opened it
    invoice: Invoice | None  # the invoice that paid it, else the latest pushed inside it
    created_at: Timestamp
    updated_at: Timestamp


@closed
class PaymentLink(TypedDict):
    id: str
    title: str
    currency: str
    amount: int  # whole shillings; 0: the payer chooses (KulmiPay's schema)
    usage_limit: int  # paid invoices allowed; 0: no limit
    is_active: bool
    redirect_url: str | None
    mobile_tarrif: Tariff | None
    card_tarrif: Tariff
    wallet_id: str | None
    url: str  # the public page: each visit opens a fresh checkout session
    qrcode_file: str  # an SVG QR code of `url`
    created_at: Timestamp
    updated_at: Timestamp


PaymentLinkPage = Paginated[PaymentLink]
