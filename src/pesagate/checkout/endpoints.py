"""The checkout API: sessions (public key), their details, payment links (secret key), and
the payment inside a session that payments' `POST /payment/collection/` hands over (a hook
wired in services.py). Thin: typed dependencies in, one use case, JSON out."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from pesagate.checkout import links, responses, service
from pesagate.checkout.schemas import CheckoutRequest, DetailsRequest, PaymentLinkRequest
from pesagate.checkout.views import SessionState, link_json, link_summary, session_json
from pesagate.checkout.views import session_signature as signature_for
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.dependencies import DbDep, JsonBody, PageDep, SettingsDep
from pesagate.idempotency.dependency import Idempotent
from pesagate.idempotency.service import Claim
from pesagate.kit.api import body_schema, routes_on
from pesagate.kit.pagination import paginated
from pesagate.merchants.auth import AnyKeyAuth, Principal, PublicKeyAuth, SecretKeyAuth
from pesagate.models import Environment, KeyKind
from pesagate.payments import responses as payment_responses
from pesagate.payments import service as payments
from pesagate.payments.endpoints import Pusher
from pesagate.payments.sessions import SessionGrant
from pesagate.payments.views import invoice_json

router = APIRouter(prefix="/api/v1", tags=["Checkout"])
routes = routes_on(router)


def _created(response: Response) -> Response:
    """201 for what a POST created (a replay of it too)."""
    if response.status_code == 200:
        response.status_code = 201
    return response


@routes(
    "POST",
    "/checkout/",
    "/payment/collection/checkout/",
    answers=responses.CheckoutSession,
    status_code=201,
    summary="Create a hosted checkout session (public key only)",
    openapi_extra=body_schema(CheckoutRequest, idempotent=True),
)
async def create_checkout(
    principal: PublicKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep, gate: Idempotent
) -> Response:
    async def create(held: Claim | None) -> responses.CheckoutSession:
        return session_json(settings, await service.create_session(db, principal, body))

    return _created(await gate.run(principal, create))


@routes(
    "POST",
    "/checkout/details/",
    answers=responses.CheckoutSession,
    summary="A checkout session (secret key, or public key + the session's signature)",
    openapi_extra=body_schema(DetailsRequest),
)
async def checkout_details(
    principal: AnyKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep
) -> responses.CheckoutSession:
    return session_json(settings, await service.session_details(db, settings, principal, body))


# ---------------------------------------------------------------- payment links


@routes(
    "POST",
    "/paymentlinks/",
    answers=responses.PaymentLink,
    status_code=201,
    summary="Create a payment link (secret key)",
    openapi_extra=body_schema(PaymentLinkRequest, idempotent=True),
)
async def create_link(
    principal: SecretKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep, gate: Idempotent
) -> Response:
    async def create(held: Claim | None) -> responses.PaymentLink:
        return link_json(settings, await links.create_link(db, principal, body))

    return _created(await gate.run(principal, create))


@routes(
    "GET", "/paymentlinks/", answers=responses.PaymentLinkPage, summary="Payment links (secret key)"
)
async def list_links(
    request: Request, principal: SecretKeyAuth, db: DbDep, settings: SettingsDep, pages: PageDep
) -> responses.PaymentLinkPage:
    count, found = await links.list_links(db, principal, pages)
    return paginated(request.url, pages, count, [link_json(settings, link) for link in found])


@routes(
    "GET",
    "/paymentlinks/{link_id}/",
    answers=responses.PaymentLink,
    summary="One payment link (secret key)",
)
async def link_detail(
    link_id: str, principal: SecretKeyAuth, db: DbDep, settings: SettingsDep
) -> responses.PaymentLink:
    return link_json(settings, await links.find_link(db, principal, link_id))


async def _update(
    link_id: str, principal: Principal, body: JsonBody, db: Database, settings: Settings
) -> responses.PaymentLink:
    return link_json(settings, await links.update_link(db, principal, link_id, body))


@routes(
    "PUT",
    "/paymentlinks/{link_id}/",
    answers=responses.PaymentLink,
    summary="Change a payment link: the fields sent (secret key)",
    openapi_extra=body_schema(PaymentLinkRequest),
)
async def replace_link(
    link_id: str, principal: SecretKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep
) -> responses.PaymentLink:
    return await _update(link_id, principal, body, db, settings)


@routes(
    "PATCH",
    "/paymentlinks/{link_id}/",
    answers=responses.PaymentLink,
    summary="Change a payment link: the fields sent (secret key)",
    openapi_extra=body_schema(PaymentLinkRequest),
)
async def patch_link(
    link_id: str, principal: SecretKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep
) -> responses.PaymentLink:
    return await _update(link_id, principal, body, db, settings)


@routes(
    "POST",
    "/paymentlinks/{link_id}/deactivate/",
    answers=responses.PaymentLink,
    summary="Deactivate a payment link: its page then says so (secret key)",
)
async def deactivate_link(
    link_id: str, principal: SecretKeyAuth, db: DbDep, settings: SettingsDep
) -> responses.PaymentLink:
    return link_json(settings, await links.deactivate_link(db, principal, link_id))


# ---------------------------------------------------------------- hooks for payments


async def push_in_session(push: Pusher, grant: SessionGrant) -> Response:
    """`POST /payment/collection/` with `checkout_id` + `signature`: 201 `{invoice,
    signature}`. The Idempotency-Key is scoped to the session's business."""
    principal = Principal(
        grant.business_pk, Environment(push.settings.env), KeyKind.PUBLIC, grant.checkout_id
    )

    async def answer(invoice_pk: int) -> payment_responses.SessionPayment:
        invoice = await payments.invoice_by_pk(push.db, invoice_pk)
        state = await service.session_state(push.db, push.settings, grant.checkout_id)
        return _session_payment(push.settings, state, invoice_json(invoice), invoice.invoice_id)

    async def pay(held: Claim | None) -> payment_responses.SessionPayment:
        invoice_pk = await service.pay(
            push.db, push.daraja, push.settings, grant, push.body, held, push.prompts
        )
        return await answer(invoice_pk)

    return _created(await push.gate.run(principal, pay, answer))


def _session_payment(
    settings: Settings,
    state: SessionState,
    invoice: payment_responses.Invoice,
    invoice_id: str,
) -> payment_responses.SessionPayment:
    return {"invoice": invoice, "signature": signature_for(settings, state, invoice_id)}


async def render_link(
    db: Database, settings: Settings, link_pk: int
) -> payment_responses.PaymentLinkSummary:
    """`meta.payment_link` of status answers (payments' hook)."""
    return link_summary(settings, await links.link_summary_source(db, link_pk))
