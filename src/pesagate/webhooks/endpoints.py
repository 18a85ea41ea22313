"""Webhook endpoints API (SPEC sections 3 and 6)."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from pesagate.dependencies import DbDep, JsonBody, PageDep, SettingsDep
from pesagate.idempotency.dependency import Idempotent
from pesagate.idempotency.service import Claim
from pesagate.kit.api import body_schema, routes_on, validate_body
from pesagate.kit.pagination import paginated
from pesagate.merchants.auth import SecretKeyAuth
from pesagate.webhooks import responses, service
from pesagate.webhooks.schemas import EndpointCreate, EndpointUpdate

router = APIRouter(prefix="/api/v1", tags=["Webhooks"])
routes = routes_on(router)


@routes(
    "GET",
    "/webhooks/",
    answers=responses.EndpointPage,
    summary="Your webhook endpoints (secret key)",
)
async def list_endpoints(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
) -> responses.EndpointPage:
    count, results = await service.list_endpoints(db, principal.business_pk, pages)
    return paginated(request.url, pages, count, results)


@routes(
    "POST",
    "/webhooks/",
    answers=responses.CreatedWebhookEndpoint,
    summary="Add a webhook endpoint; the answer carries its signing secret, once (secret key)",
    openapi_extra=body_schema(EndpointCreate, idempotent=True),
)
async def create_endpoint(
    principal: SecretKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep, gate: Idempotent
) -> Response:
    async def create(held: Claim | None) -> responses.CreatedWebhookEndpoint:
        request = validate_body(EndpointCreate, body)
        live = settings.env == "live"
        return await service.create_endpoint(db, principal.business_pk, request, live, held)

    return await gate.run(principal, create)


@routes(
    "GET",
    "/webhooks/events/",
    answers=responses.EventPage,
    summary="The event log, newest first (secret key)",
)
async def list_events(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
    status: str | None = None,
    topic: str | None = None,
) -> responses.EventPage:
    count, results = await service.list_events(db, principal.business_pk, pages, status, topic)
    return paginated(request.url, pages, count, results)


@routes(
    "POST",
    "/webhooks/events/{event_id}/replay/",
    answers=responses.WebhookEvent,
    summary="Re-send a FAILED event (secret key)",
)
async def replay_event(
    event_id: str, principal: SecretKeyAuth, db: DbDep
) -> responses.WebhookEvent:
    return await service.replay_event(db, principal.business_pk, event_id)


@routes(
    "GET",
    "/webhooks/{webhook_id}/",
    answers=responses.WebhookEndpoint,
    summary="One webhook endpoint (secret key)",
)
async def get_endpoint(
    webhook_id: str, principal: SecretKeyAuth, db: DbDep
) -> responses.WebhookEndpoint:
    return await service.endpoint_detail(db, principal.business_pk, webhook_id)


@routes(
    "PATCH",
    "/webhooks/{webhook_id}/",
    answers=responses.WebhookEndpoint,
    summary="Change a webhook endpoint (secret key)",
    openapi_extra=body_schema(EndpointUpdate),
)
async def update_endpoint(
    webhook_id: str, principal: SecretKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep
) -> responses.WebhookEndpoint:
    change = validate_body(EndpointUpdate, body)
    live = settings.env == "live"
    return await service.update_endpoint(db, principal.business_pk, webhook_id, change, live)


@routes(
    "DELETE",
    "/webhooks/{webhook_id}/",
    answers=None,
    summary="Remove a webhook endpoint (secret key)",
    status_code=204,
    response_class=Response,
)
async def delete_endpoint(webhook_id: str, principal: SecretKeyAuth, db: DbDep) -> Response:
    await service.delete_endpoint(db, principal.business_pk, webhook_id)
    return Response(status_code=204)
