"""What every dashboard page shares: templates, security headers, the session cookie, the
signed-in visitor, CSRF checks on every form, and role checks."""

import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, Response

from pesagate.accounts import service as accounts
from pesagate.accounts.service import Access, Visitor
from pesagate.config import Settings
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.kit.money import CENTS_PER_UNIT
from pesagate.models import Role

PREFIX = "/dashboard"
STATIC_DIR = Path(__file__).parent / "static"  # served at /dashboard/static/ (app.py)
SESSION_COOKIE = "pesagate_session"
LOGIN_CSRF_COOKIE = "pesagate_login_csrf"  # double-submit token of the sign-in form
FORM_MAX_BYTES = 16_384
_CSP = (
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# What each role may do beyond reading (README "Dashboard roles").
CAN_MANAGE_KEYS = frozenset({Role.OWNER, Role.DEVELOPER})
CAN_MANAGE_TEAM = frozenset({Role.OWNER})
CAN_REFUND = frozenset({Role.OWNER})  # money leaves the business

templates = Environment(
    loader=PackageLoader("pesagate.dashboard", "templates"),
    autoescape=select_autoescape(default=True),
)


def money(minor: int) -> str:
    """150000050 -> "1,500,000.50"."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), CENTS_PER_UNIT)
    return f"{sign}{units:,}.{cents:02d}"


templates.filters["money"] = money
templates.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    headers = {
        "Content-Security-Policy": _CSP,
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }
    return HTMLResponse(templates.get_template(template).render(**context), status, headers)


def notice(title: str, message: str, status: int, visitor: Visitor | None = None) -> HTMLResponse:
    return page("notice.html", status, title=title, message=message, visitor=visitor)


class PageRefused(Exception):
    """Answered with a page (app.py installs the handler): not found, forbidden, sign in."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class SignInNeeded(Exception):
    pass


def secure_cookies(settings: Settings) -> bool:
    return settings.env == "live"


def set_session_cookie(response: Response, settings: Settings, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
    )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_login_csrf_cookie(response: Response, settings: Settings, token: str) -> None:
    """The double-submit half of a form shown before a session exists (sign-in, invitation)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
    )


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the dashboard's only kind), bounded."""
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise PageRefused(413, "Too large", "This form is larger than any the dashboard sends.")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise PageRefused(400, "Bad form", "This form could not be read.") from None
    return dict(pairs)


def same_token(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def current_visitor(request: Request, db: DbDep) -> Visitor:
    visitor = await accounts.visitor(db, request.cookies.get(SESSION_COOKIE))
    if visitor is None:
        raise SignInNeeded()
    return visitor


VisitorDep = Annotated[Visitor, Depends(current_visitor)]


async def business_access(business_id: str, visitor: VisitorDep) -> Access:
    """The business in the URL, if the visitor may open it; any other answers 404."""
    access = visitor.business(business_id)
    if access is None:
        raise PageRefused(404, "Not found", "There is no such page.")
    return access


AccessDep = Annotated[Access, Depends(business_access)]


async def checked_form(request: Request, visitor: VisitorDep) -> dict[str, str]:
    """A state-changing form: refused (403) unless it carries the session's CSRF token."""
    form = await read_form(request)
    if not same_token(form.get("csrf"), visitor.csrf_token):
        raise PageRefused(403, "Refused", "This form has expired or did not come from here.")
    return form


FormDep = Annotated[dict[str, str], Depends(checked_form)]


def require(access: Access, roles: frozenset[Role]) -> None:
    """Checked on the server for every action, whatever the page showed."""
    if access.role not in roles:
        raise PageRefused(403, "Not allowed", f"A {access.role.value} cannot do this.")


__all__ = ["DbDep", "SettingsDep"]
