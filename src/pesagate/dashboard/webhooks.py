"""The Webhooks page: endpoints (add, with the signing secret shown once; test; enable and
disable), the event log with each attempt's response code, and replay of failed events. Every
change goes through the webhooks service, as the API's."""

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from pesagate.dashboard.web import (
    CAN_MANAGE_KEYS,
    PREFIX,
    AccessDep,
    FormDep,
    PageRefused,
    VisitorDep,
    page,
    require,
)
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.errors import ApiError, NotFound, ValidationFailed
from pesagate.kit.api import validate_body
from pesagate.kit.pagination import Page
from pesagate.webhooks import service
from pesagate.webhooks.schemas import EndpointCreate, EndpointUpdate

router = APIRouter(prefix=PREFIX, include_in_schema=False)
EVENTS_SHOWN = 50


async def _webhooks_page(
    db: Any, access: Any, visitor: Any, status: int = 200, **extra: Any
) -> Response:
    _, endpoints = await service.list_endpoints(db, access.business_pk, Page(1, 100))
    _, events = await service.list_events(db, access.business_pk, Page(1, EVENTS_SHOWN), None, None)
    return page(
        "webhooks.html",
        status,
        visitor=visitor,
        access=access,
        endpoints=endpoints,
        events=events,
        can_manage=access.role in CAN_MANAGE_KEYS,
        nav="webhooks",
        **extra,
    )


@router.get("/b/{business_id}/webhooks/")
async def webhooks(access: AccessDep, visitor: VisitorDep, db: DbDep) -> Response:
    return await _webhooks_page(db, access, visitor)


def _problem(error: ApiError) -> str:
    if isinstance(error, ValidationFailed):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.errors.items())
    return str(error.detail)


@router.post("/b/{business_id}/webhooks/add")
async def add(
    access: AccessDep, visitor: VisitorDep, form: FormDep, db: DbDep, settings: SettingsDep
) -> Response:
    require(access, CAN_MANAGE_KEYS)
    body = {"endpoint": form.get("endpoint", ""), "challenge": form.get("challenge", "")}
    try:
        request = validate_body(EndpointCreate, body)
        created = await service.create_endpoint(
            db, access.business_pk, request, settings.env == "live", None
        )
    except ApiError as refused:
        return await _webhooks_page(db, access, visitor, 400, error=_problem(refused))
    return await _webhooks_page(db, access, visitor, created=created)


@router.post("/b/{business_id}/webhooks/{webhook_id}/test")
async def test(
    webhook_id: str, access: AccessDep, visitor: VisitorDep, _form: FormDep, db: DbDep
) -> Response:
    require(access, CAN_MANAGE_KEYS)
    try:
        event = await service.send_test_event(db, access.business_pk, webhook_id[:40])
    except NotFound:
        raise PageRefused(404, "Not found", "There is no such webhook.") from None
    notice = f"Test event {event.public_id} queued: its attempts appear below."
    return await _webhooks_page(db, access, visitor, notice=notice)


@router.post("/b/{business_id}/webhooks/{webhook_id}/active")
async def set_active(
    webhook_id: str,
    access: AccessDep,
    visitor: VisitorDep,
    form: FormDep,
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    require(access, CAN_MANAGE_KEYS)
    change = EndpointUpdate(is_active=form.get("active") == "true")
    try:
        await service.update_endpoint(
            db, access.business_pk, webhook_id[:40], change, settings.env == "live"
        )
    except NotFound:
        raise PageRefused(404, "Not found", "There is no such webhook.") from None
    return await _webhooks_page(db, access, visitor)


@router.post("/b/{business_id}/webhooks/events/{event_id}/replay")
async def replay(
    event_id: str, access: AccessDep, visitor: VisitorDep, _form: FormDep, db: DbDep
) -> Response:
    require(access, CAN_MANAGE_KEYS)
    try:
        await service.replay_event(db, access.business_pk, event_id[:60], delivered_too=True)
    except NotFound:
        raise PageRefused(404, "Not found", "There is no such event.") from None
    except ApiError as refused:
        return await _webhooks_page(db, access, visitor, 409, error=_problem(refused))
    notice = f"Event {event_id[:60]} replayed: it is sent again with the same webhook-id."
    return await _webhooks_page(db, access, visitor, notice=notice)
