"""Webhook endpoints API (SPEC sections 3 and 6)."""

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from starlette.responses import Response

from pesagate.dependencies import DbDep, JsonBody, PageDep, SettingsDep
from pesagate.errors import ValidationFailed
from pesagate.idempotency.dependency import Idempotent
from pesagate.kit.pagination import paginated
from pesagate.merchants.auth import SecretKeyAuth
from pesagate.models import EventStatus, WebhookEndpoint, WebhookEvent
from pesagate.payments.endpoints import body_schema, routes_on
from pesagate.payments.schemas import validate_body
from pesagate.webhooks import service
from pesagate.webhooks.schemas import EndpointCreate, EndpointUpdate
from pesagate.webhooks.views import endpoint_json, event_json

router = APIRouter(prefix="/api/v1")
routes = routes_on(router)


@routes("GET", "/webhooks/", summary="Your webhook endpoints (secret key)")
async def list_endpoints(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
) -> dict[str, Any]:
    conditions = (
        WebhookEndpoint.business_id == principal.business_pk,
        WebhookEndpoint.deleted_at.is_(None),
    )
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(WebhookEndpoint).where(*conditions)
        )
        endpoints = await session.scalars(
            select(WebhookEndpoint)
            .where(*conditions)
            .order_by(WebhookEndpoint.id)
            .offset(pages.offset)
            .limit(pages.size)
        )
        results = [endpoint_json(endpoint) for endpoint in endpoints]
    return paginated(request.url, pages, count or 0, results)


@routes(
    "POST",
    "/webhooks/",
    summary="Add a webhook endpoint; the answer carries its signing secret, once (secret key)",
    openapi_extra=body_schema(EndpointCreate, idempotent=True),
)
async def create_endpoint(
    principal: SecretKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep, gate: Idempotent
) -> Response:
    async def create() -> dict[str, Any]:
        request = validate_body(EndpointCreate, body)
        async with db.transaction() as session:
            endpoint = await service.create_endpoint(
                session, principal.business_pk, request, live=settings.env == "live"
            )
        return {**endpoint_json(endpoint), "signing_secret": endpoint.signing_secret}

    return await gate.run(principal, create)


@routes("GET", "/webhooks/events/", summary="The event log, newest first (secret key)")
async def list_events(
    request: Request,
    principal: SecretKeyAuth,
    db: DbDep,
    pages: PageDep,
    status: str | None = None,
    topic: str | None = None,
) -> dict[str, Any]:
    conditions = [WebhookEvent.business_id == principal.business_pk]
    if status:
        if status not in EventStatus.__members__:
            raise ValidationFailed.field("status", f'"{status}" is not a valid choice.')
        conditions.append(WebhookEvent.status == status)
    if topic:
        conditions.append(WebhookEvent.topic == topic)
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(*conditions)
        )
        events = list(
            await session.scalars(
                select(WebhookEvent)
                .where(*conditions)
                .order_by(WebhookEvent.id.desc())
                .offset(pages.offset)
                .limit(pages.size)
            )
        )
        attempts = await service.attempts_of(session, [event.id for event in events])
    results = [event_json(event, attempts[event.id]) for event in events]
    return paginated(request.url, pages, count or 0, results)


@routes(
    "POST", "/webhooks/events/{event_id}/replay/", summary="Re-send a FAILED event (secret key)"
)
async def replay_event(event_id: str, principal: SecretKeyAuth, db: DbDep) -> dict[str, Any]:
    async with db.transaction() as session:
        event = await service.find_event(session, principal.business_pk, event_id)
        await service.replay(session, event)
        attempts = await service.attempts_of(session, [event.id])
        return event_json(event, attempts[event.id])


@routes("GET", "/webhooks/{webhook_id}/", summary="One webhook endpoint (secret key)")
async def get_endpoint(webhook_id: str, principal: SecretKeyAuth, db: DbDep) -> dict[str, Any]:
    async with db.read() as session:
        endpoint = await service.find_endpoint(session, principal.business_pk, webhook_id)
    return endpoint_json(endpoint)


@routes(
    "PATCH",
    "/webhooks/{webhook_id}/",
    summary="Change a webhook endpoint (secret key)",
    openapi_extra=body_schema(EndpointUpdate),
)
async def update_endpoint(
    webhook_id: str, principal: SecretKeyAuth, body: JsonBody, db: DbDep, settings: SettingsDep
) -> dict[str, Any]:
    change = validate_body(EndpointUpdate, body)
    async with db.transaction() as session:
        endpoint = await service.find_endpoint(
            session, principal.business_pk, webhook_id, lock=True
        )
        await service.update_endpoint(endpoint, change, live=settings.env == "live")
    return endpoint_json(endpoint)


@routes(
    "DELETE",
    "/webhooks/{webhook_id}/",
    summary="Remove a webhook endpoint (secret key)",
    status_code=204,
    response_class=Response,
)
async def delete_endpoint(webhook_id: str, principal: SecretKeyAuth, db: DbDep) -> Response:
    async with db.transaction() as session:
        endpoint = await service.find_endpoint(
            session, principal.business_pk, webhook_id, lock=True
        )
        service.delete_endpoint(endpoint)
    return Response(status_code=204)
