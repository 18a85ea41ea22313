"""Payment links' use cases: the merchant's CRUD (secret key), and a visit to a link's page,
which opens a fresh checkout session unless the link is inactive or used up."""

from typing import Any

from pesagate.checkout import repository
from pesagate.checkout.schemas import CheckoutRequest, PaymentLinkRequest
from pesagate.checkout.service import LinkUnavailable, new_session
from pesagate.checkout.views import SessionState
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.errors import NotFound
from pesagate.kit import ids
from pesagate.kit.api import validate_body
from pesagate.kit.money import CENTS_PER_UNIT
from pesagate.kit.pagination import Page
from pesagate.merchants.auth import Principal
from pesagate.models import Environment, PaymentLink
from pesagate.payments import service as payments
from pesagate.payments import sessions as invoices
from pesagate.payments.schemas import PaymentContext

NOT_FOUND = "No payment link matches the given query."
API_REF_MAX = 70


async def create_link(db: Database, principal: Principal, body: dict[str, Any]) -> PaymentLink:
    context = await payments.payment_context(db, principal.business_pk)
    request = validate_body(PaymentLinkRequest, body, context)
    link = PaymentLink(
        link_id=ids.session_id(),
        business_id=principal.business_pk,
        environment=principal.environment,
    )
    _apply(link, request)
    async with db.transaction() as session:
        return await repository.add_link(session, link)


def _apply(link: PaymentLink, request: PaymentLinkRequest) -> None:
    link.title = request.title
    link.amount_minor = (request.amount or 0) * CENTS_PER_UNIT
    link.currency = request.currency
    link.usage_limit = request.usage_limit
    link.redirect_url = request.redirect_url
    link.mobile_tarrif = request.mobile_tarrif
    link.wallet_id = request.wallet_id
    link.is_active = request.is_active


def _as_body(link: PaymentLink) -> dict[str, Any]:
    return {
        "title": link.title,
        "amount": link.amount_minor // CENTS_PER_UNIT,
        "currency": link.currency,
        "usage_limit": link.usage_limit,
        "redirect_url": link.redirect_url,
        "mobile_tarrif": link.mobile_tarrif,
        "wallet_id": link.wallet_id,
        "is_active": link.is_active,
    }


async def find_link(db: Database, principal: Principal, link_id: str) -> PaymentLink:
    async with db.read() as session:
        link = await repository.link_by_id(
            session, principal.business_pk, link_id, principal.environment
        )
    if link is None:
        raise NotFound(NOT_FOUND)
    return link


async def list_links(
    db: Database, principal: Principal, page: Page
) -> tuple[int, list[PaymentLink]]:
    async with db.read() as session:
        return await repository.links_page(
            session, principal.business_pk, principal.environment, page.offset, page.size
        )


async def update_link(
    db: Database, principal: Principal, link_id: str, body: dict[str, Any]
) -> PaymentLink:
    """The fields sent change (an empty body, as intasend-rs sends, changes nothing); the
    result is validated whole, as a new link would be."""
    context = await payments.payment_context(db, principal.business_pk)
    async with db.transaction() as session:
        link = await repository.link_by_id(
            session, principal.business_pk, link_id, principal.environment
        )
        if link is None:
            raise NotFound(NOT_FOUND)
        link = await repository.lock_link(session, link.id)
        request = validate_body(PaymentLinkRequest, {**_as_body(link), **body}, context)
        _apply(link, request)
        return link


async def deactivate_link(db: Database, principal: Principal, link_id: str) -> PaymentLink:
    return await update_link(db, principal, link_id, {"is_active": False})


async def link_summary_source(db: Database, link_pk: int) -> PaymentLink:
    async with db.read() as session:
        link = await repository.link_by_pk(session, link_pk)
    if link is None:
        raise NotFound(NOT_FOUND)
    return link


async def public_link(db: Database, settings: Settings, link_id: str) -> PaymentLink:
    """A link of this server's environment, for its public page and QR code."""
    async with db.read() as session:
        link = await repository.link_by_id(session, None, link_id, Environment(settings.env))
    if link is None:
        raise NotFound(NOT_FOUND)
    return link


async def open_link(db: Database, settings: Settings, link_id: str) -> SessionState:
    """A visit: a fresh checkout session for the link, unless it is inactive or paid as often
    as its limit allows (then nothing is created and nothing is pushed)."""
    link = await public_link(db, settings, link_id)
    if not link.is_active:
        raise LinkUnavailable("This payment link is inactive.")
    context = await payments.payment_context(db, link.business_id)
    async with db.transaction() as session:
        if link.usage_limit:
            paid, _ = await invoices.link_usage(session, link.id)
            if paid >= link.usage_limit:
                raise LinkUnavailable()
        checkout = await repository.add_session(
            session,
            new_session(context, link.environment, _session_request(link, context), link.id),
        )
    return SessionState(checkout, context.business, [], link)


def _session_request(link: PaymentLink, context: PaymentContext) -> CheckoutRequest:
    return CheckoutRequest.model_construct(
        amount=link.amount_minor // CENTS_PER_UNIT or None,
        currency=link.currency,
        method="M-PESA",
        mobile_tarrif=link.mobile_tarrif,
        wallet_id=link.wallet_id,
        api_ref=link.title[:API_REF_MAX],
        redirect_url=link.redirect_url,
        unique_api_ref=False,
        email=None,
        first_name=None,
        last_name=None,
        phone_number=None,
        country=None,
        callback_url=None,
        host=None,
        comment=None,
        version=None,
    )
