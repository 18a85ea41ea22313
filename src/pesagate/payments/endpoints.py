"""The payments API (SPEC section 3). Thin: typed dependencies in, one service call, JSON out.

Every route answers with and without its trailing slash, and the older path families of the
reference docs are served too.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.dependencies import (
    DbDep,
    JsonBody,
    PageDep,
    app_db,
    app_settings,
    get_json_body,
)
from pesagate.errors import PermissionDenied, ValidationFailed
from pesagate.idempotency.dependency import IdempotencyGate, gate_for
from pesagate.idempotency.service import Claim
from pesagate.kit.api import body_schema, routes_on, validate_body
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.kit.money import format_minor
from pesagate.kit.pagination import paginated
from pesagate.merchants.auth import (
    PUBLIC_KEY_HEADERS,
    AnyKeyAuth,
    Principal,
    SecretKeyAuth,
    any_key_auth,
    secret_key_auth,
)
from pesagate.merchants.ratelimit import PromptLimiter
from pesagate.models import InvoiceState, KeyKind
from pesagate.mpesa.client import DarajaClient
from pesagate.payments import responses, schemas, service
from pesagate.payments.repository import InvoiceFilter
from pesagate.payments.sessions import GrantSession, RenderLink, SessionGrant
from pesagate.payments.views import invoice_json, session_json, status_json

router = APIRouter(prefix="/api/v1", tags=["Payments"])


routes = routes_on(router)


# Status first: Starlette tries routes in order, and status is the route clients poll.
@routes(
    "POST",
    "/payment/status/",
    "/payment/collection/status/",
    answers=responses.PaymentStatus,
    summary="An invoice's status (secret key; public key: without the customer's personal "
    "data; checkout_id + signature: invoices of that session)",
    openapi_extra=body_schema(schemas.StatusRequest),
)
async def payment_status(request: Request) -> Response:
    caller = await get_caller(request)
    db, settings = app_db(request), app_settings(request)
    wanted = validate_body(schemas.StatusRequest, await get_json_body(request))
    if caller.grant is not None:
        invoice = await service.find_invoice(db, caller.grant.business_pk, wanted.invoice_id)
        if invoice.checkout_session_id != caller.grant.checkout_pk:
            raise PermissionDenied("This invoice was not paid in this checkout session.")
        personal = True
    else:
        assert caller.principal is not None
        invoice = await service.find_invoice(db, caller.principal.business_pk, wanted.invoice_id)
        # The public key is published in web pages: it reads states, not who paid.
        personal = caller.principal.via is KeyKind.SECRET
    link = None
    if invoice.payment_link_id is not None:
        render_link: RenderLink = request.app.state.services.render_link
        link = await render_link(db, settings, invoice.payment_link_id)
    # A Response, not a dict: FastAPI would validate and re-encode a dict (the hottest route).
    return JSONBytesResponse(status_json(invoice, personal=personal, payment_link=link))


@dataclass
class Pusher:
    """Everything an STK push needs besides the caller and the request model."""

    body: dict[str, Any]
    db: Database
    settings: Settings
    daraja: DarajaClient
    gate: IdempotencyGate
    prompts: PromptLimiter

    async def __call__(self, principal: Principal, model: type[schemas.StkPushRequest]) -> Response:
        async def push(held: Claim | None) -> responses.PaymentSession:
            invoice = await service.collect(
                self.db,
                self.daraja,
                self.settings,
                principal,
                self.body,
                model,
                held=held,
                prompts=self.prompts,
            )
            return session_json(invoice)

        async def resume(invoice_pk: int) -> responses.PaymentSession:
            """A retry of a push whose request died: the invoice as it is now, never a new
            push (reconciliation settles it as usual)."""
            return session_json(await service.invoice_by_pk(self.db, invoice_pk))

        return await self.gate.run(principal, push, resume)


async def pusher_for(request: Request) -> Pusher:
    services = request.app.state.services
    body = await get_json_body(request)
    return Pusher(
        body,
        app_db(request),
        app_settings(request),
        services.daraja,
        gate_for(request),
        services.prompt_limiter,
    )


@routes(
    "POST",
    "/payment/mpesa-stk-push/",
    "/payment/collection/stk-push/",
    answers=responses.PaymentSession,
    summary="Send an M-Pesa STK push (secret key)",
    openapi_extra=body_schema(schemas.StkPushRequest, idempotent=True),
)
async def stk_push(request: Request) -> Response:
    principal = await secret_key_auth(request)
    push = await pusher_for(request)
    return await push(principal, schemas.StkPushRequest)


# Checkout's push inside a session (pesagate.checkout, wired in services.py).
PushInSession = Callable[[Pusher, SessionGrant], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls a route open to browsers: a key, or (a body naming `checkout_id`) a checkout
    session proved by its signature, which then decides."""

    principal: Principal | None
    grant: SessionGrant | None


def _names_a_key(request: Request) -> bool:
    headers = request.headers
    return "authorization" in headers or any(headers.get(h) for h in PUBLIC_KEY_HEADERS)


async def get_caller(request: Request) -> Caller:
    """A key named in a header is checked before the body is read (as everywhere); a body
    naming a checkout session is checked by the session's signature (checkout's hook)."""
    principal = await any_key_auth(request) if _names_a_key(request) else None
    body = await get_json_body(request)
    if body.get("checkout_id") is not None:
        grant_session: GrantSession = request.app.state.services.grant_session
        return Caller(principal, await grant_session(app_db(request), app_settings(request), body))
    if principal is None:
        principal = await any_key_auth(request)
    return Caller(principal, None)


@routes(
    "POST",
    "/payment/collection/",
    "/collect/",
    answers=responses.PaymentSession,
    summary="Collect a payment: M-PESA via STK push (secret or public key, or inside a "
    "checkout session: checkout_id + signature, answered 201)",
    openapi_extra=body_schema(schemas.CollectRequest, idempotent=True),
    responses={201: {"model": responses.SessionPayment}},
)
async def collect(request: Request) -> Response:
    caller = await get_caller(request)
    push = await pusher_for(request)
    if caller.grant is not None:
        push_in_session: PushInSession = request.app.state.services.push_in_session
        return await push_in_session(push, caller.grant)
    assert caller.principal is not None
    return await push(caller.principal, schemas.CollectRequest)


@routes(
    "POST",
    "/payment/get_amount_estimate/",
    answers=responses.AmountEstimate,
    summary="What a payment will cost, per tariff (secret or public key)",
    openapi_extra=body_schema(schemas.EstimateRequest),
)
async def amount_estimate(
    principal: AnyKeyAuth, body: JsonBody, db: DbDep
) -> responses.AmountEstimate:
    priced = await service.estimate(db, principal.business_pk, body)
    return {
        "amount": format_minor(priced.amount_minor),
        "charges": format_minor(priced.charges_minor),
        "value": format_minor(priced.value_minor),
        "net_amount": format_minor(priced.net_minor),
        "tarrif": priced.tariff,
    }


@routes(
    "GET",
    "/invoices/",
    answers=responses.InvoicePage,
    summary="List invoices, newest first (secret key)",
)
async def list_invoices(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
    state: str | None = None,
    api_ref: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
) -> responses.InvoicePage:
    where = _invoice_filter(state, api_ref, created_after, created_before)
    count, invoices = await service.list_invoices(db, principal.business_pk, where, pages)
    results = [invoice_json(invoice) for invoice in invoices]
    return paginated(request.url, pages, count, results)


def _invoice_filter(
    state: str | None, api_ref: str | None, created_after: str | None, created_before: str | None
) -> InvoiceFilter:
    errors: dict[str, list[str]] = {}
    if state and state not in InvoiceState.__members__:
        errors["state"] = [f'"{state}" is not a valid choice.']
    moments: dict[str, datetime | None] = {}
    for name, raw in (("created_after", created_after), ("created_before", created_before)):
        moments[name] = _parse_time(raw) if raw else None
        if raw and moments[name] is None:
            errors[name] = ["Enter a valid date/time (RFC 3339, with a timezone)."]
    if errors:
        raise ValidationFailed(errors)
    return InvoiceFilter(
        InvoiceState(state) if state else None,
        api_ref or None,
        created_after=moments["created_after"],
        created_before=moments["created_before"],
    )


def _parse_time(raw: str) -> datetime | None:
    """An RFC 3339 time with its offset, as UTC; None if it is not one (or not representable
    in UTC, like 9999-12-31T23:59-14:00)."""
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


@routes(
    "GET", "/invoices/{invoice_id}/", answers=responses.Invoice, summary="One invoice (secret key)"
)
async def invoice_detail(invoice_id: str, principal: SecretKeyAuth, db: DbDep) -> responses.Invoice:
    invoice = await service.find_invoice(db, principal.business_pk, invoice_id)
    return invoice_json(invoice)
