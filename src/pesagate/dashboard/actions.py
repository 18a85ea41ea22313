"""The dashboard's Developers page and its action that changes a business: API key rotation.
It checks the CSRF token (FormDep) and the role, on the server. (Team is in `team.py`.)"""

from fastapi import APIRouter, Request
from starlette.responses import Response

from pesagate.dashboard.web import (
    CAN_MANAGE_KEYS,
    PREFIX,
    AccessDep,
    FormDep,
    VisitorDep,
    page,
    require,
)
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.merchants import service as merchants
from pesagate.models import Environment

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
