"""The payments API (SPEC section 3). Thin: typed dependencies in, one service call, JSON out.

Every route answers with and without its trailing slash, and the older path families of the
reference docs are served too.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from starlette.responses import Response

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.dependencies import DbDep, JsonBody, PageDep, SettingsDep
from pesagate.errors import ValidationFailed
from pesagate.idempotency.dependency import IdempotencyGate, Idempotent
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.kit.money import format_minor
from pesagate.kit.pagination import paginated
from pesagate.merchants.auth import AnyKeyAuth, Principal, SecretKeyAuth
from pesagate.models import Invoice, InvoiceState
from pesagate.mpesa.client import DarajaClient
from pesagate.openapi import IDEMPOTENCY_PARAMETER
from pesagate.payments import schemas, service
from pesagate.payments.fees import effective_tariff, quote
from pesagate.payments.views import invoice_json, session_json, status_json

router = APIRouter(prefix="/api/v1")


async def get_daraja(request: Request) -> DarajaClient:
    daraja: DarajaClient = request.app.state.services.daraja
    return daraja


DarajaDep = Annotated[DarajaClient, Depends(get_daraja)]


def routes_on(router: APIRouter) -> Callable[..., Callable[[Callable[..., Any]], Any]]:
    """A decorator factory registering a handler on each path, with and without the trailing
    slash; only the first path appears in the OpenAPI schema."""

    def routes(method: str, *paths: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        kwargs.setdefault("response_class", JSONBytesResponse)

        def register(handler: Callable[..., Any]) -> Any:
            for index, path in enumerate(paths):
                for variant in (path, path.rstrip("/")):
                    router.add_api_route(
                        variant,
                        handler,
                        methods=[method],
                        include_in_schema=index == 0 and variant == path,
                        **kwargs,
                    )
            return handler

        return register

    return routes


def body_schema(model: type[Any], *, idempotent: bool = False) -> dict[str, Any]:
    """OpenAPI for a body that is validated by hand (with context) rather than by FastAPI;
    `idempotent`: the route takes an Idempotency-Key."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    extra: dict[str, Any] = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
    }
    if idempotent:
        extra["parameters"] = [IDEMPOTENCY_PARAMETER]
    return extra


routes = routes_on(router)


@dataclass
class Pusher:
    """Everything an STK push needs besides the caller and the request model."""

    body: dict[str, Any]
    db: Database
    settings: Settings
    daraja: DarajaClient
    gate: IdempotencyGate

    async def __call__(self, principal: Principal, model: type[schemas.StkPushRequest]) -> Response:
        async def push() -> dict[str, Any]:
            invoice = await service.collect(
                self.db, self.daraja, self.settings, principal, self.body, model
            )
            return session_json(invoice)

        return await self.gate.run(principal, push)


async def get_pusher(
    body: JsonBody, db: DbDep, settings: SettingsDep, daraja: DarajaDep, gate: Idempotent
) -> Pusher:
    return Pusher(body, db, settings, daraja, gate)


PusherDep = Annotated[Pusher, Depends(get_pusher)]


@routes(
    "POST",
    "/payment/mpesa-stk-push/",
    "/payment/collection/stk-push/",
    summary="Send an M-Pesa STK push (secret key)",
    openapi_extra=body_schema(schemas.StkPushRequest, idempotent=True),
)
async def stk_push(principal: SecretKeyAuth, push: PusherDep) -> Response:
    return await push(principal, schemas.StkPushRequest)


@routes(
    "POST",
    "/payment/collection/",
    "/collect/",
    summary="Collect a payment: M-PESA via STK push (secret or public key)",
    openapi_extra=body_schema(schemas.CollectRequest, idempotent=True),
)
async def collect(principal: AnyKeyAuth, push: PusherDep) -> Response:
    return await push(principal, schemas.CollectRequest)


@routes(
    "POST",
    "/payment/status/",
    "/payment/collection/status/",
    summary="An invoice's status (secret or public key)",
    openapi_extra=body_schema(schemas.StatusRequest),
)
async def payment_status(principal: AnyKeyAuth, body: JsonBody, db: DbDep) -> Response:
    request = schemas.validate_body(schemas.StatusRequest, body)
    invoice = await service.find_invoice(db, principal.business_pk, request.invoice_id)
    # A Response, not a dict: FastAPI would validate and re-encode a dict (the hottest route).
    return JSONBytesResponse(status_json(invoice))


@routes(
    "POST",
    "/payment/get_amount_estimate/",
    summary="What a payment will cost, per tariff (secret or public key)",
    openapi_extra=body_schema(schemas.EstimateRequest),
)
async def amount_estimate(principal: AnyKeyAuth, body: JsonBody, db: DbDep) -> dict[str, Any]:
    context = await service.payment_context(db, principal.business_pk)
    request = schemas.validate_body(schemas.EstimateRequest, body)
    tariff = effective_tariff(request.tarrif, context.business)
    priced = quote(request.amount, tariff, context.business)
    return {
        "amount": format_minor(priced.amount_minor),
        "charges": format_minor(priced.charges_minor),
        "value": format_minor(priced.value_minor),
        "net_amount": format_minor(priced.net_minor),
        "tarrif": tariff.value,
    }


@routes("GET", "/invoices/", summary="List invoices, newest first (secret key)")
async def list_invoices(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
    state: str | None = None,
    api_ref: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
) -> dict[str, Any]:
    conditions = [Invoice.business_id == principal.business_pk]
    conditions += _invoice_filters(state, api_ref, created_after, created_before)
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(Invoice).where(*conditions))
        invoices = (
            await session.scalars(
                select(Invoice)
                .where(*conditions)
                .order_by(Invoice.created_at.desc(), Invoice.id.desc())
                .offset(pages.offset)
                .limit(pages.size)
            )
        ).all()
    results = [invoice_json(invoice) for invoice in invoices]
    return paginated(request.url, pages, count or 0, results)


def _invoice_filters(
    state: str | None, api_ref: str | None, created_after: str | None, created_before: str | None
) -> list[Any]:
    conditions: list[Any] = []
    errors: dict[str, list[str]] = {}
    if state:
        if state not in InvoiceState.__members__:
            errors["state"] = [f'"{state}" is not a valid choice.']
        conditions.append(Invoice.state == state)
    if api_ref:
        conditions.append(Invoice.api_ref == api_ref)
    for name, raw, compare in (
        ("created_after", created_after, Invoice.created_at.__ge__),
        ("created_before", created_before, Invoice.created_at.__le__),
    ):
        if raw:
            moment = _parse_time(raw)
            if moment is None:
                errors[name] = ["Enter a valid date/time (RFC 3339, with a timezone)."]
            else:
                conditions.append(compare(moment))
    if errors:
        raise ValidationFailed(errors)
    return conditions


def _parse_time(raw: str) -> datetime | None:
    """An RFC 3339 time with its offset, as UTC; None if it is not one (or not representable
    in UTC, like 9999-12-31T23:59-14:00)."""
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


@routes("GET", "/invoices/{invoice_id}/", summary="One invoice (secret key)")
async def invoice_detail(invoice_id: str, principal: SecretKeyAuth, db: DbDep) -> dict[str, Any]:
    invoice = await service.find_invoice(db, principal.business_pk, invoice_id)
    return invoice_json(invoice)
