"""Team: who may open a business and as what, and invitations to it.

An owner invites by email and role. Someone who already has an account joins at once and keeps
their password; anyone else gets a link (shown once, valid `PESAGATE_DASHBOARD_INVITATION_TTL_S`)
that the owner hands over however they like: pesagate sends no email. Whoever opens the link
chooses a password and is signed in. A link is used once and can be revoked until then."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from pesagate.accounts import service as accounts
from pesagate.accounts.service import Access, Visitor
from pesagate.config import Settings
from pesagate.dashboard.web import (
    CAN_MANAGE_TEAM,
    LOGIN_CSRF_COOKIE,
    PREFIX,
    AccessDep,
    FormDep,
    VisitorDep,
    new_login_csrf,
    notice,
    page,
    read_form,
    require,
    same_token,
    set_login_csrf_cookie,
    set_session_cookie,
)
from pesagate.db import Database
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.models import Role

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ROLES = tuple(role.value for role in Role)
NO_LONGER_OPEN = (
    "This invitation link was used, revoked or has expired. Ask the business's owner for a new one."
)


async def _team_page(
    db: Database, visitor: Visitor, access: Access, status: int = 200, **shown: Any
) -> Response:
    may_invite = access.role in CAN_MANAGE_TEAM
    return page(
        "team.html",
        status,
        visitor=visitor,
        access=access,
        members=await accounts.team(db, access.business_pk),
        invitations=await accounts.pending_invitations(db, access.business_pk)
        if may_invite
        else [],
        roles=ROLES,
        can_invite=may_invite,
        nav="team",
        **shown,
    )


@router.get("/b/{business_id}/team/")
async def team(access: AccessDep, visitor: VisitorDep, db: DbDep) -> Response:
    return await _team_page(db, visitor, access)


@router.post("/b/{business_id}/team/invite")
async def invite(
    access: AccessDep, visitor: VisitorDep, form: FormDep, db: DbDep, settings: SettingsDep
) -> Response:
    require(access, CAN_MANAGE_TEAM)
    role_name = form.get("role", "")
    if role_name not in ROLES:
        return await _team_page(db, visitor, access, 400, error="Choose a role.")
    try:
        invited = await accounts.invite(
            db,
            access.business_pk,
            form.get("email", ""),
            Role(role_name),
            visitor.user_pk,
            settings.dashboard_invitation_ttl_s,
        )
    except accounts.AccountError as refused:
        return await _team_page(db, visitor, access, 400, error=str(refused))
    link = None
    if invited.token is not None:
        link = f"{settings.public_url.rstrip('/')}{PREFIX}/invitation/{invited.token}"
    return await _team_page(db, visitor, access, invited=invited, link=link)


@router.post("/b/{business_id}/team/invitations/{invitation_pk}/revoke")
async def revoke(
    invitation_pk: int, access: AccessDep, visitor: VisitorDep, _form: FormDep, db: DbDep
) -> Response:
    require(access, CAN_MANAGE_TEAM)
    if not await accounts.revoke_invitation(db, access.business_pk, invitation_pk):
        return notice("Not found", "There is no such open invitation.", 404, visitor)
    return RedirectResponse(f"{PREFIX}/b/{access.business_id}/team/", 303)


# ---------------------------------------------------------------- the invited person's side


def _invitation_page(
    settings: Settings,
    token: str,
    invitation: accounts.OpenInvitation,
    error: str | None = None,
    status: int = 200,
) -> Response:
    csrf = new_login_csrf()  # no session yet: the sign-in form's double-submit cookie
    response = page(
        "invitation.html",
        status,
        invitation=invitation,
        token=token,
        csrf=csrf,
        error=error,
        visitor=None,
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    set_login_csrf_cookie(response, settings, csrf)
    return response


@router.get("/invitation/{token}")
async def invitation(token: str, db: DbDep, settings: SettingsDep) -> Response:
    found = await accounts.open_invitation(db, token)
    if found is None:
        return notice("Invitation not valid", NO_LONGER_OPEN, 404)
    return _invitation_page(settings, token, found)


@router.post("/invitation/{token}")
async def accept(token: str, request: Request, db: DbDep, settings: SettingsDep) -> Response:
    form = await read_form(request)
    if not same_token(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return notice("Refused", "This form has expired or did not come from here.", 403)
    found = await accounts.open_invitation(db, token)
    if found is None:
        return notice("Invitation not valid", NO_LONGER_OPEN, 404)
    password = form.get("password", "")
    if password != form.get("password_again"):
        return _invitation_page(settings, token, found, "The two passwords differ.", 400)
    try:
        accepted = await accounts.accept_invitation(
            db, token, password, settings.dashboard_session_ttl_s
        )
    except accounts.AccountError as refused:
        return _invitation_page(settings, token, found, str(refused), 400)
    if accepted is None:  # used or revoked since the check above
        return notice("Invitation not valid", NO_LONGER_OPEN, 404)
    new, business_id = accepted
    response = RedirectResponse(f"{PREFIX}/b/{business_id}/", 303)
    set_session_cookie(response, settings, new.token, round(settings.dashboard_session_ttl_s))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response
