"""JSON shapes of checkout sessions and payment links, and the public URLs they carry."""

from dataclasses import dataclass, field

from pesagate.checkout import responses, signatures
from pesagate.config import Settings
from pesagate.kit.clock import rfc3339_ms
from pesagate.kit.money import CENTS_PER_UNIT, format_minor
from pesagate.merchants.fees import effective_tariff
from pesagate.merchants.views import BusinessTerms
from pesagate.models import CheckoutSession, Invoice, InvoiceState, PaymentLink, Tariff
from pesagate.payments.responses import PaymentLinkSummary
from pesagate.payments.views import invoice_json


@dataclass
class SessionState:
    """A checkout session with its business and its invoices (newest first)."""

    checkout: CheckoutSession
    business: BusinessTerms
    invoices: list[Invoice] = field(default_factory=list)
    link: PaymentLink | None = None

    @property
    def paid_by(self) -> Invoice | None:
        return next((i for i in self.invoices if i.state == InvoiceState.COMPLETE), None)

    @property
    def latest(self) -> Invoice | None:
        return self.invoices[0] if self.invoices else None

    @property
    def paid(self) -> bool:
        return self.paid_by is not None


def _base(settings: Settings) -> str:
    return settings.public_url.rstrip("/")


def express_url(settings: Settings, checkout_id: str) -> str:
    return f"{_base(settings)}/checkout/{checkout_id}/express/"


def link_url(settings: Settings, link_id: str) -> str:
    return f"{_base(settings)}/pay/{link_id}/"


def qr_url(settings: Settings, link_id: str) -> str:
    return f"{_base(settings)}/pay/{link_id}/qr.svg"


def session_signature(settings: Settings, state: SessionState, reference: str | None = None) -> str:
    checkout = state.checkout
    return signatures.sign(
        settings.checkout_signing_key, checkout.checkout_id, state.business.business_id, reference
    )


def session_json(settings: Settings, state: SessionState) -> responses.CheckoutSession:
    checkout = state.checkout
    shown = state.paid_by or state.latest
    return {
        "id": checkout.checkout_id,
        "url": express_url(settings, checkout.checkout_id),
        "signature": session_signature(settings, state),
        "paid": state.paid,
        "amount": format_minor(checkout.amount_minor or 0),
        "currency": checkout.currency,
        "method": checkout.method,
        "first_name": checkout.first_name,
        "last_name": checkout.last_name,
        "email": checkout.email,
        "phone_number": checkout.phone_number,
        "country": checkout.country,
        "address": None,
        "city": None,
        "state": None,
        "zipcode": None,
        "api_ref": checkout.api_ref,
        "redirect_url": checkout.redirect_url,
        "callback_url": checkout.callback_url,
        "host": checkout.host,
        "comment": checkout.comment,
        "wallet_id": checkout.wallet_id,
        "mobile_tarrif": effective_tariff(checkout.mobile_tarrif, state.business),
        "card_tarrif": Tariff.BUSINESS_PAYS,
        "version": checkout.version,
        "unique_api_ref": checkout.unique_api_ref,
        "payment_link": state.link.link_id if state.link else None,
        "invoice": invoice_json(shown) if shown is not None else None,
        "created_at": rfc3339_ms(checkout.created_at),
        "updated_at": rfc3339_ms(checkout.updated_at),
    }


def link_json(settings: Settings, link: PaymentLink) -> responses.PaymentLink:
    return {
        "id": link.link_id,
        "title": link.title,
        "currency": link.currency,
        "amount": link.amount_minor // CENTS_PER_UNIT,
        "usage_limit": link.usage_limit,
        "is_active": link.is_active,
        "redirect_url": link.redirect_url,
        "mobile_tarrif": link.mobile_tarrif,
        "card_tarrif": Tariff.BUSINESS_PAYS,
        "wallet_id": link.wallet_id,
        "url": link_url(settings, link.link_id),
        "qrcode_file": qr_url(settings, link.link_id),
        "created_at": rfc3339_ms(link.created_at),
        "updated_at": rfc3339_ms(link.updated_at),
    }


def link_summary(settings: Settings, link: PaymentLink) -> PaymentLinkSummary:
    """The link as payments embeds it in status answers (`meta.payment_link`)."""
    return {
        "id": link.link_id,
        "title": link.title,
        "is_active": link.is_active,
        "redirect_url": link.redirect_url,
        "amount": link.amount_minor // CENTS_PER_UNIT,
        "usage_limit": link.usage_limit,
        "qrcode_file": qr_url(settings, link.link_id),
        "url": link_url(settings, link.link_id),
        "created_at": rfc3339_ms(link.created_at),
        "updated_at": rfc3339_ms(link.updated_at),
    }
