"""The dashboard's actions that change a business: API key rotation (Developers) and team
invitations (Team). Each checks the CSRF token (FormDep) and the role, on the server."""

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from pesagate.accounts import service as accounts
from pesagate.dashboard.web import (
    CAN_MANAGE_KEYS,
    CAN_MANAGE_TEAM,
    PREFIX,
    AccessDep,
    FormDep,
    VisitorDep,
    page,
    require,
)
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.merchants import service as merchants
from pesagate.models import Environment, Role

router = APIRouter(prefix=PREFIX, include_in_schema=False)
# The simulator's scripted customers (README "Sandbox phone numbers").
SANDBOX_NUMBERS = (
    ("254712345678", "approves after a moment"),
    ("254700009008", "waits for you to type the PIN 1234 at /sim/phone/254700009008"),
    ("254700000001", "insufficient balance (1)"),
    ("254700001032", "the customer cancels (1032)"),
    ("254700001037", "no answer from the phone (1037)"),
    ("254700002001", "wrong PIN (2001)"),
    ("254700009001", "paid, but the callback is lost: reconciliation settles it"),
    ("254700009002", "the callback arrives three times"),
)


@router.get("/b/{business_id}/developers/")
async def developers(
    request: Request, access: AccessDep, visitor: VisitorDep, db: DbDep, settings: SettingsDep
) -> Response:
    keys = await merchants.live_keys(db, access.business_pk)
    public = next((k.lookup for k in keys if k.kind.value == "public"), "ISPubKey_…")
    return page(
        "developers.html",
        visitor=visitor,
        access=access,
        keys=keys,
        public_key=public,
        api=f"{settings.public_url.rstrip('/')}/api/v1",
        numbers=SANDBOX_NUMBERS if settings.env == "sandbox" else (),
        can_rotate=access.role in CAN_MANAGE_KEYS,
        environment=settings.env,
        nav="developers",
    )


@router.get("/b/{business_id}/developers/rotate")
async def confirm_rotation(
    access: AccessDep, visitor: VisitorDep, settings: SettingsDep
) -> Response:
    """The confirmation step: rotating stops the keys in use at once."""
    require(access, CAN_MANAGE_KEYS)
    return page(
        "rotate.html", visitor=visitor, access=access, environment=settings.env, nav="developers"
    )


@router.post("/b/{business_id}/developers/rotate")
async def rotate(
    request: Request,
    access: AccessDep,
    visitor: VisitorDep,
    form: FormDep,
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    require(access, CAN_MANAGE_KEYS)
    if form.get("confirm") != "rotate":
        return page(
            "rotate.html",
            400,
            visitor=visitor,
            access=access,
            environment=settings.env,
            error="Type rotate to confirm.",
            nav="developers",
        )
    pair = await merchants.rotate_business_keys(db, access.business_pk, Environment(settings.env))
    request.app.state.key_cache.forget_business(access.business_pk)
    return page("rotated.html", visitor=visitor, access=access, pair=pair, nav="developers")


@router.get("/b/{business_id}/team/")
async def team(access: AccessDep, visitor: VisitorDep, db: DbDep) -> Response:
    members = await accounts.team(db, access.business_pk)
    return page(
        "team.html",
        visitor=visitor,
        access=access,
        members=members,
        roles=[role.value for role in Role],
        can_invite=access.role in CAN_MANAGE_TEAM,
        nav="team",
    )


@router.post("/b/{business_id}/team/invite")
async def invite(access: AccessDep, visitor: VisitorDep, form: FormDep, db: DbDep) -> Response:
    """A new member with a one-time password to hand over (shown once); someone who already
    has an account is given the role and keeps their password."""
    require(access, CAN_MANAGE_TEAM)
    role_name = form.get("role", "")
    members = await accounts.team(db, access.business_pk)
    context: dict[str, Any] = {
        "visitor": visitor,
        "access": access,
        "members": members,
        "nav": "team",
    }
    context |= {"roles": [role.value for role in Role], "can_invite": True}
    if role_name not in {role.value for role in Role}:
        return page("team.html", 400, error="Choose a role.", **context)
    password = secrets.token_urlsafe(12)
    try:
        user, _, created = await accounts.create_user(
            db, form.get("email", ""), password, access.business_id, Role(role_name)
        )
    except accounts.AccountError as refused:
        return page("team.html", 400, error=str(refused), **context)
    context["members"] = await accounts.team(db, access.business_pk)
    shown = password if created else None  # an existing account keeps its own password
    return page("team.html", invited=user.email, password=shown, **context)
