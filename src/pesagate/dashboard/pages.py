"""The dashboard's pages: sign-in and sign-out, the overview, payments (list, CSV, live
states, detail with its timeline). Actions that change a business are in `actions.py`."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles

from pesagate.accounts import service as accounts
from pesagate.accounts.service import Access, Throttle, Visitor
from pesagate.config import Settings
from pesagate.dashboard import timeline
from pesagate.dashboard.web import (
    CAN_MANAGE_KEYS,
    CAN_REFUND,
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    STATIC_DIR,
    AccessDep,
    FormDep,
    PageRefused,
    SignInNeeded,
    VisitorDep,
    new_login_csrf,
    notice,
    page,
    read_form,
    same_token,
    set_login_csrf_cookie,
    set_session_cookie,
)
from pesagate.db import Database
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.errors import NotFound
from pesagate.kit.asgi import add_routes
from pesagate.kit.money import AmountError, parse_amount_to_minor
from pesagate.kit.pagination import Page
from pesagate.kit.phones import to_safaricom_msisdn
from pesagate.ledger import service as ledger
from pesagate.merchants.ratelimit import Throttled
from pesagate.models import InvoiceState
from pesagate.payments import history
from pesagate.payments import service as payments
from pesagate.payments.repository import InvoiceFilter
from pesagate.payments.views import invoice_json
from pesagate.refunds import service as refunds
from pesagate.refunds.reasons import REASONS
from pesagate.refunds.repository import RefundFilter

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 50
# Matches are counted up to this many, and paged through as far: beyond it, counting and deep
# OFFSETs cost hundreds of milliseconds on PostgreSQL (BENCHMARKS.md). Filters narrow a list;
# the CSV export has every match.
COUNT_CAP = 10_000
LAST_PAGE = COUNT_CAP // PAGE_SIZE
CSV_BATCH = 500
LIVE_STATES = (InvoiceState.PENDING.value, InvoiceState.PROCESSING.value)
OPEN_STATES = "OPEN"  # the state filter's word for either of LIVE_STATES
CSV_COLUMNS = (
    "invoice_id",
    "state",
    "value",
    "charges",
    "net_amount",
    "currency",
    "account",
    "api_ref",
    "mpesa_reference",
    "failed_code",
    "failed_reason",
    "created_at",
    "updated_at",
)


def install(app: FastAPI) -> None:
    add_routes(app, router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")

    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, _: SignInNeeded) -> Response:
        target = request.url.path if request.method == "GET" else PREFIX + "/"
        return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", 303)

    @app.exception_handler(PageRefused)
    async def refused(_: Request, refusal: PageRefused) -> Response:
        return notice(refusal.title, refusal.message, refusal.status)


# ---------------------------------------------------------------- signing in and out


def _safe_next(target: str | None) -> str:
    """Only a path of the dashboard itself (no open redirect)."""
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX + "/"


def _login_page(settings: Any, next_path: str, error: str | None, status: int = 200) -> Response:
    token = new_login_csrf()
    response = page("login.html", status, csrf=token, next=next_path, error=error, visitor=None)
    set_login_csrf_cookie(response, settings, token)
    return response


@router.get("/login")
async def login_form(settings: SettingsDep, next: str | None = None) -> Response:
    return _login_page(settings, _safe_next(next), None)


@router.post("/login")
async def login(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    form = await read_form(request)
    next_path = _safe_next(form.get("next"))
    if not same_token(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return notice("Refused", "This form has expired or did not come from here.", 403)
    if not await _address_may_sign_in(request):
        error = "Too many sign-in attempts from your address: wait a minute."
        return _login_page(settings, next_path, error, 429)
    throttle = Throttle(settings.dashboard_login_max_failures, settings.dashboard_lockout_s)
    try:
        new = await accounts.sign_in(
            db,
            form.get("email", ""),
            form.get("password", ""),
            settings.dashboard_session_ttl_s,
            throttle,
        )
    except accounts.SignInThrottled:
        error = "Too many failed sign-ins: this account is locked for a few minutes."
        return _login_page(settings, next_path, error, 429)
    except accounts.SignInRefused:
        return _login_page(settings, next_path, "Wrong email or password.", 401)
    response = RedirectResponse(next_path, 303)
    set_session_cookie(response, settings, new.token, round(settings.dashboard_session_ttl_s))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


async def _address_may_sign_in(request: Request) -> bool:
    """Attempts per client address, whatever the email: the per-account lock alone lets one
    address try one password on every account."""
    limiter = getattr(request.app.state.services, "sign_in_limiter", None)
    if limiter is None:
        return True
    address = request.client.host if request.client else "unknown"
    try:
        await limiter.check(f"dashboard-sign-in:{address}")
    except Throttled:
        return False
    return True


@router.post("/logout")
async def logout(request: Request, db: DbDep, _form: FormDep) -> Response:
    await accounts.sign_out(db, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(f"{PREFIX}/login", 303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.get("/")
async def home(visitor: VisitorDep) -> Response:
    if len(visitor.access) == 1:
        return RedirectResponse(f"{PREFIX}/b/{visitor.access[0].business_id}/", 303)
    return page("businesses.html", visitor=visitor)


# ---------------------------------------------------------------- overview


@router.get("/b/{business_id}/")
async def overview(access: AccessDep, visitor: VisitorDep, db: DbDep) -> Response:
    figures = await history.overview(db, access.business_pk)
    _, wallets = await ledger.list_wallets(db, access.business_pk, Page(1, 100))
    return page(
        "overview.html",
        visitor=visitor,
        access=access,
        figures=figures,
        wallets=wallets,
        nav="overview",
    )


# ---------------------------------------------------------------- payments


class FilterError(ValueError):
    pass


def _day(raw: str, name: str) -> datetime:
    try:
        if not raw.isascii():  # strptime's digits include every script's
            raise ValueError(raw)
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise FilterError(f"{name}: a date as YYYY-MM-DD.") from None


def _amount(raw: str, name: str) -> int:
    """The API's amount rules (ASCII digits, at most two places, bounded before arithmetic)."""
    try:
        return parse_amount_to_minor(raw, allow_zero=True)
    except AmountError:
        raise FilterError(f"{name}: an amount in KES.") from None


def payment_filter(params: dict[str, str]) -> InvoiceFilter:
    """The Payments page's filters (the API's list, plus phone and amount), validated."""
    state = params.get("state") or None
    open_only = state == OPEN_STATES
    if open_only:
        state = None
    elif state is not None and state not in InvoiceState.__members__:
        raise FilterError(f"state: {state[:20]!r} is not a state.")
    phone = None
    if raw_phone := params.get("phone", "").strip():
        phone = to_safaricom_msisdn(raw_phone[:20])
        if phone is None:
            raise FilterError("phone: a Safaricom number, like 0712345678.")
    since = _day(params["from"], "from") if params.get("from") else None
    # The day's last instant: adding a day to it would overflow at 9999-12-31 (a 500).
    until = (
        _day(params["to"], "to").replace(hour=23, minute=59, second=59, microsecond=999999)
        if params.get("to")
        else None
    )
    return InvoiceFilter(
        InvoiceState(state) if state else None,
        (params.get("api_ref") or "")[:100] or None,
        created_after=since,
        created_before=until,
        phone=phone,
        value_min_minor=_amount(params["min"], "min") if params.get("min") else None,
        value_max_minor=_amount(params["max"], "max") if params.get("max") else None,
        open_only=open_only,
    )


_FILTER_KEYS = ("state", "phone", "api_ref", "from", "to", "min", "max")


def _filter_params(request: Request) -> dict[str, str]:
    return {key: request.query_params.get(key, "")[:100] for key in _FILTER_KEYS}


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 7 else 1


@router.get("/b/{business_id}/payments/")
async def payments_page(
    request: Request, access: AccessDep, visitor: VisitorDep, db: DbDep
) -> Response:
    if search := request.query_params.get("q", "").strip():
        found = await history.find_reference(db, access.business_pk, search)
        if found is not None:
            return RedirectResponse(f"{PREFIX}/b/{access.business_id}/payments/{found}/", 303)
    params = _filter_params(request)
    number = max(1, _page_number(request.query_params.get("page")))
    try:
        where = payment_filter(params)
    except FilterError as invalid:
        return page(
            "payments.html",
            400,
            visitor=visitor,
            access=access,
            params=params,
            error=str(invalid),
            invoices=[],
            count=0,
            nav="payments",
        )
    number = min(number, LAST_PAGE)
    count, invoices = await payments.list_invoices(
        db, access.business_pk, where, Page(number, PAGE_SIZE), count_cap=COUNT_CAP
    )
    query = {k: v for k, v in params.items() if v}
    reachable = min(count, COUNT_CAP)
    pages = {
        "number": number,
        "last": max(1, -(-reachable // PAGE_SIZE)),
        "previous": urlencode({**query, "page": number - 1}) if number > 1 else None,
        "next": (
            urlencode({**query, "page": number + 1}) if number * PAGE_SIZE < reachable else None
        ),
    }
    return page(
        "payments.html",
        visitor=visitor,
        access=access,
        params=params,
        error=f"No payment has the id or receipt {search[:40]!r}." if search else None,
        invoices=invoices,
        count=count,
        count_cap=COUNT_CAP,
        pages=pages,
        csv_query=urlencode(query),
        live_states=LIVE_STATES,
        nav="payments",
    )


@router.get("/b/{business_id}/payments.csv")
async def payments_csv(request: Request, access: AccessDep, db: DbDep) -> Response:
    """Every invoice the filters match (not only one page), as the API's list renders them."""
    try:
        where = payment_filter(_filter_params(request))
    except FilterError as invalid:
        raise PageRefused(400, "Bad filter", str(invalid)) from None

    async def rows() -> AsyncIterator[str]:
        yield _csv_line(CSV_COLUMNS)
        number = 1
        while True:
            _, batch = await payments.list_invoices(
                db, access.business_pk, where, Page(number, CSV_BATCH)
            )
            for invoice in batch:
                rendered: dict[str, Any] = dict(invoice_json(invoice))
                yield _csv_line(str(rendered.get(c) or "") for c in CSV_COLUMNS)
            if len(batch) < CSV_BATCH:
                return
            number += 1

    name = f"payments-{access.business_id}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _csv_line(values: Any) -> str:
    out = io.StringIO()
    # A cell starting with = + - @ is a formula in a spreadsheet: quote it as text.
    csv.writer(out).writerow(_inert(str(value)) for value in values)
    return out.getvalue()


def _inert(cell: str) -> str:
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


@router.get("/b/{business_id}/payments/states")
async def payment_states(request: Request, access: AccessDep, db: DbDep) -> Response:
    """The rows still PENDING or PROCESSING ask here for their states (dashboard.js)."""
    ids = [i for i in request.query_params.get("ids", "")[:5000].split(",") if i]
    states = await history.live_states(db, access.business_pk, ids)
    return JSONResponse(states, headers={"Cache-Control": "no-store"})


@router.get("/b/{business_id}/payments/{invoice_id}/")
async def payment_detail(
    invoice_id: str, access: AccessDep, visitor: VisitorDep, db: DbDep, settings: SettingsDep
) -> Response:
    return await payment_page(db, settings, access, visitor, invoice_id)


async def _refunds_of(db: Database, business_pk: int, invoice_id: str) -> list[Any]:
    _, found = await refunds.list_refunds(
        db, business_pk, RefundFilter(invoice_id=invoice_id), Page(1, 100)
    )
    return found


async def payment_page(
    db: Database,
    settings: Settings,
    access: Access,
    visitor: Visitor,
    invoice_id: str,
    status: int = 200,
    **extra: Any,
) -> Response:
    """A payment with its timeline, its refunds, and the refund form for those who may (the
    form posts to `refunds.py`, which answers with this page)."""
    try:
        record = await history.payment_record(db, access.business_pk, invoice_id[:40])
    except NotFound:
        raise PageRefused(404, "Not found", "There is no such payment.") from None
    events = await timeline.of_payment(db, access.business_pk, record)
    invoice = record.invoice
    refundable = invoice.state == InvoiceState.COMPLETE and settings.refunds_on
    return page(
        "payment.html",
        status,
        visitor=visitor,
        access=access,
        invoice=invoice,
        events=events,
        live=invoice.state.value in LIVE_STATES,
        refunds=await _refunds_of(db, access.business_pk, invoice.invoice_id)
        if settings.refunds_on
        else [],
        can_refund=refundable and access.role in CAN_REFUND,
        can_manage_webhooks=access.role in CAN_MANAGE_KEYS,
        left_to_refund=invoice.value_minor - invoice.refunded_minor,
        reasons=REASONS,
        nav="payments",
        **extra,
    )
