"""Checkout sessions' use cases: create, details, the signature check, the payment inside a
session (payments' three phases, with checkout's rules in phase 1), and the express page's
state. Each takes the `Database` and opens its own units of work; the SQL is in
`repository.py` (checkout's tables) and payments' modules (invoices)."""

from typing import Any

from pesagate.checkout import repository, signatures
from pesagate.checkout.schemas import CheckoutRequest, DetailsRequest
from pesagate.checkout.views import SessionState
from pesagate.config import Settings
from pesagate.db import AnySession, AsyncSession, Database
from pesagate.errors import BadRequest, NotFound, PermissionDenied
from pesagate.idempotency import service as idempotency
from pesagate.idempotency.service import Claim
from pesagate.kit import ids
from pesagate.kit.api import validate_body
from pesagate.kit.money import CENTS_PER_UNIT
from pesagate.merchants import service as merchants
from pesagate.merchants.auth import Principal
from pesagate.merchants.ratelimit import PromptLimiter
from pesagate.merchants.views import BusinessTerms
from pesagate.models import CheckoutSession, Environment, InvoiceState, KeyKind
from pesagate.mpesa.client import DarajaClient
from pesagate.payments import service as payments
from pesagate.payments import sessions as invoices
from pesagate.payments.schemas import CollectRequest, PaymentContext
from pesagate.payments.sessions import InvoiceOrigin, SessionGrant

NOT_FOUND = "No checkout session matches the given query."


class SessionPaid(BadRequest):
    default_detail = "This checkout session is already paid."


class PaymentInFlight(BadRequest):
    default_detail = (
        "A payment in this checkout session is still waiting for the customer: wait for its "
        "result before trying again."
    )


class LinkUnavailable(BadRequest):
    default_detail = "This payment link is no longer available."


class LinkBusy(BadRequest):
    default_detail = (
        "Someone else is paying through this payment link right now; try again in a minute."
    )


# ---------------------------------------------------------------- sessions


async def create_session(db: Database, principal: Principal, body: dict[str, Any]) -> SessionState:
    """A new session; with `unique_api_ref`, the business's session with that api_ref if
    there is one."""
    context = await payments.payment_context(db, principal.business_pk)
    request = validate_body(CheckoutRequest, body, context)
    async with db.transaction() as session:
        if request.unique_api_ref and request.api_ref:
            found = await repository.session_with_api_ref(
                session, principal.business_pk, request.api_ref
            )
            if found is not None and found.environment == principal.environment:
                return await _state(session, found, context)
        checkout = await repository.add_session(
            session, new_session(context, principal.environment, request)
        )
    return SessionState(checkout, context.business)


def new_session(
    context: PaymentContext,
    environment: Environment,
    request: CheckoutRequest,
    payment_link_pk: int | None = None,
) -> CheckoutSession:
    return CheckoutSession(
        checkout_id=ids.session_id(),
        business_id=context.business.id,
        environment=environment,
        payment_link_id=payment_link_pk,
        amount_minor=request.amount * CENTS_PER_UNIT if request.amount else None,
        currency=request.currency,
        method=request.method,
        mobile_tarrif=request.mobile_tarrif,
        wallet_id=request.wallet_id,
        api_ref=request.api_ref,
        unique_api_ref=request.unique_api_ref,
        email=request.email,
        first_name=request.first_name,
        last_name=request.last_name,
        phone_number=request.phone_number,
        country=request.country,
        redirect_url=request.redirect_url,
        callback_url=request.callback_url,
        host=request.host,
        comment=request.comment,
        version=request.version,
    )


async def _state(
    session: AnySession, checkout: CheckoutSession, context: PaymentContext | None = None
) -> SessionState:
    business: BusinessTerms
    if context is not None:
        business = context.business
    else:
        business = await merchants.business(session, checkout.business_id)
    link = None
    if checkout.payment_link_id is not None:
        link = await repository.link_by_pk(session, checkout.payment_link_id)
    found = await invoices.session_invoices(session, checkout.id)
    return SessionState(checkout, business, found, link)


async def session_state(db: Database, settings: Settings, checkout_id: str) -> SessionState:
    """A session of this server's environment, with its business and invoices (the page)."""
    async with db.read() as session:
        checkout = await repository.session_by_id(session, checkout_id, Environment(settings.env))
        if checkout is None:
            raise NotFound(NOT_FOUND)
        return await _state(session, checkout)


async def session_details(
    db: Database, settings: Settings, principal: Principal, body: dict[str, Any]
) -> SessionState:
    """`POST /checkout/details/`: the secret key, or the public key with the signature."""
    request = validate_body(DetailsRequest, body)
    if principal.via is KeyKind.PUBLIC:
        signatures.verify(settings.checkout_signing_key, request.signature, request.checkout_id)
    state = await session_state(db, settings, request.checkout_id)
    if state.checkout.business_id != principal.business_pk:
        raise NotFound(NOT_FOUND)
    return state


async def grant_session(db: Database, settings: Settings, body: dict[str, Any]) -> SessionGrant:
    """The hook payments' routes call for a body naming `checkout_id`: its signature checked
    (before any query), then the session looked up."""
    checkout_id = body.get("checkout_id")
    if not isinstance(checkout_id, str) or not checkout_id or len(checkout_id) > 64:
        raise PermissionDenied("Send the checkout_id and signature of a checkout session.")
    signatures.verify(settings.checkout_signing_key, body.get("signature"), checkout_id)
    async with db.read() as session:
        checkout = await repository.session_by_id(session, checkout_id, Environment(settings.env))
    if checkout is None:
        raise NotFound(NOT_FOUND)
    return SessionGrant(checkout.business_id, checkout.id, checkout.checkout_id)


# ---------------------------------------------------------------- paying inside a session


def payment_body(checkout: CheckoutSession, body: dict[str, Any]) -> dict[str, Any]:
    """What is pushed: the phone (and, for an open amount, the amount) from the payer; the
    rest as the session fixed it."""
    fixed = checkout.amount_minor is not None
    return {
        "method": body.get("method"),
        "currency": body.get("currency") or checkout.currency,
        "phone_number": body.get("phone_number") or checkout.phone_number,
        "amount": (checkout.amount_minor or 0) // CENTS_PER_UNIT if fixed else body.get("amount"),
        "api_ref": checkout.api_ref,
        "wallet_id": checkout.wallet_id,
        "mobile_tarrif": checkout.mobile_tarrif,
        "email": checkout.email,
        "first_name": checkout.first_name,
        "last_name": checkout.last_name,
    }


async def pay(
    db: Database,
    daraja: DarajaClient,
    settings: Settings,
    grant: SessionGrant,
    body: dict[str, Any],
    held: Claim | None,
    prompts: PromptLimiter | None,
) -> int:
    """An STK push inside a session; its invoice's pk. Payments' three phases, with the
    session's (and its link's) rows locked in phase 1, so a session is paid at most once, one
    attempt runs at a time, and a link's usage limit holds under concurrent payers."""
    async with db.read() as session:
        checkout = await repository.session_by_pk(session, grant.checkout_pk)
    assert checkout is not None
    paying = payment_body(checkout, body)
    context = await payments.push_context(db, grant.business_pk, paying.get("wallet_id"))
    request = validate_body(CollectRequest, paying, context)
    if prompts is not None:
        await prompts.check(f"checkout:{grant.business_pk}", request.phone_number)
    async with db.transaction() as session:
        checkout = await repository.lock_session(session, grant.checkout_pk)
        await _refuse_settled(session, checkout)
        origin = InvoiceOrigin(checkout.id, checkout.payment_link_id)
        invoice = await payments.create_invoice(session, settings, context, request, origin)
        await idempotency.bind(session, held, invoice.id)
    result = await payments.send_push(daraja, settings, invoice, context.business.short_name)
    await payments.record_push_result(db, invoice, result)
    return invoice.id


async def _refuse_settled(session: AsyncSession, checkout: CheckoutSession) -> None:
    """Under the session's lock (and its link's): no second payment of a paid session, no
    second attempt while one waits, no payment past a link's limit."""
    for invoice in await invoices.session_invoices(session, checkout.id):
        if invoice.state == InvoiceState.COMPLETE:
            raise SessionPaid()
        if invoice.state in invoices.IN_FLIGHT:
            raise PaymentInFlight()
    if checkout.payment_link_id is None:
        return
    link = await repository.lock_link(session, checkout.payment_link_id)
    if not link.is_active:
        raise LinkUnavailable("This payment link is inactive.")
    if link.usage_limit:
        paid, in_flight = await invoices.link_usage(session, link.id)
        if paid >= link.usage_limit:
            raise LinkUnavailable()
        if paid + in_flight >= link.usage_limit:
            raise LinkBusy()
