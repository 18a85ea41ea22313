"""The customer's pages: the express page of a checkout session, the page a payment link
opens, its QR code, and the session the inline script's iframe opens. Server-rendered with
Jinja2 (autoescaped); every asset is served by pesagate itself (`/static/`), none from a CDN.

The express page may be framed only by the origin its session names (`host`, set by the
inline script); without one it cannot be framed at all (clickjacking)."""

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import segno
from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pesagate.checkout import links, service
from pesagate.checkout.views import SessionState, express_url, link_url, session_signature
from pesagate.config import Settings
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.errors import ApiError, NotFound, ValidationFailed
from pesagate.kit.clock import utc_now
from pesagate.kit.money import CENTS_PER_UNIT, format_minor
from pesagate.merchants.auth import public_key_principal
from pesagate.models import Invoice

router = APIRouter(include_in_schema=False)
STATIC_DIR = Path(__file__).parent / "static"  # served at /static/ (app.py)
templates = Environment(
    loader=PackageLoader("pesagate.checkout", "templates"),
    autoescape=select_autoescape(default=True),
)
POLL_MS = 1500
QUERY_MAX = 40  # parameters read from an embed URL
_STATIC_CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'"


def _page(
    template: str, status: int = 200, frame_origin: str | None = None, **context: Any
) -> HTMLResponse:
    ancestors = frame_origin or "'none'"
    headers = {
        "Content-Security-Policy": f"{_STATIC_CSP}; frame-ancestors {ancestors}",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(templates.get_template(template).render(**context), status, headers)


def _notice(title: str, message: str, status: int) -> HTMLResponse:
    # Notices hold nothing to click: the inline script's modal may show them.
    return _page("notice.html", status, frame_origin="*", title=title, message=message)


def _grouped(minor: int) -> str:
    """150000000 -> "1,500,000.00", as the page shows amounts."""
    units, cents = divmod(minor, CENTS_PER_UNIT)
    return f"{units:,}.{cents:02d}"


def _local_phone(msisdn: str | None) -> str:
    """254712345678 -> 0712345678, as Kenyans write it."""
    return f"0{msisdn[3:]}" if msisdn and msisdn.startswith("254") else ""


def _invoice_data(invoice: Invoice, settings: Settings) -> dict[str, Any]:
    expires = invoice.created_at + timedelta(seconds=settings.stk_prompt_ttl_s)
    return {
        "invoice_id": invoice.invoice_id,
        "state": invoice.state.value,
        "value": format_minor(invoice.value_minor),
        "mpesa_reference": invoice.mpesa_reference,
        "failed_code": invoice.failed_code,
        "failed_reason": invoice.failed_reason,
        "phone": _local_phone(invoice.account),
        "seconds_left": max(0, round((expires - utc_now()).total_seconds())),
    }


def _page_data(settings: Settings, state: SessionState) -> dict[str, Any]:
    checkout = state.checkout
    shown = state.paid_by or state.latest
    amount = checkout.amount_minor
    return {
        "checkout_id": checkout.checkout_id,
        "signature": session_signature(settings, state),
        "amount": format_minor(amount) if amount is not None else None,
        "currency": checkout.currency,
        "merchant": state.business.name,
        "phone": _local_phone(checkout.phone_number),
        # IntaSend's SDK puts its redirectURL in callback_url: the compatibility field.
        "redirect_url": checkout.redirect_url or checkout.callback_url,
        "host": checkout.host,
        "api_ref": checkout.api_ref,
        "prompt_ttl_s": round(settings.stk_prompt_ttl_s),
        "poll_ms": POLL_MS,
        "paid": state.paid,
        "latest": _invoice_data(shown, settings) if shown is not None else None,
    }


@router.get("/checkout/{checkout_id}/express/")
@router.get("/checkout/{checkout_id}/express")
async def express_page(checkout_id: str, db: DbDep, settings: SettingsDep) -> Response:
    try:
        state = await service.session_state(db, settings, checkout_id)
    except NotFound:
        return _notice("Checkout not found", "This payment page does not exist.", 404)
    amount = state.checkout.amount_minor
    return _page(
        "express.html",
        frame_origin=state.checkout.host,
        data=_page_data(settings, state),
        merchant=state.business.name,
        amount=_grouped(amount) if amount is not None else None,
        currency=state.checkout.currency,
        title=state.link.title if state.link else None,
    )


@router.get("/checkout/embed/")
@router.get("/checkout/embed")
async def embedded_checkout(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """The inline script's iframe: a session made from the button's options (as IntaSend's
    web SDK does), then its express page."""
    params = dict(list(request.query_params.items())[:QUERY_MAX])
    try:
        principal = await public_key_principal(request, db, settings, params.get("public_key"))
        state = await service.create_session(db, principal, params)
    except ValidationFailed as invalid:
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in invalid.errors.items())
        return _notice("This payment cannot start", problems, 400)
    except ApiError as error:
        return _notice("This payment cannot start", error.detail, error.status_code)
    return RedirectResponse(express_url(settings, state.checkout.checkout_id), 303)


@router.get("/pay/{link_id}/")
@router.get("/pay/{link_id}")
async def link_page(link_id: str, db: DbDep, settings: SettingsDep) -> Response:
    """A visit to a payment link: a fresh checkout session, or why there is none."""
    try:
        state = await links.open_link(db, settings, link_id)
    except NotFound:
        return _notice("Payment link not found", "This payment link does not exist.", 404)
    except service.LinkUnavailable as closed:
        return _notice("Payment link unavailable", closed.detail, 410)
    return RedirectResponse(express_url(settings, state.checkout.checkout_id), 303)


@router.get("/pay/{link_id}/qr.svg")
async def link_qr(link_id: str, db: DbDep, settings: SettingsDep) -> Response:
    """The link's URL as a QR code (SVG), to print or show at a till."""
    link = await links.public_link(db, settings, link_id)
    image = io.BytesIO()
    segno.make(link_url(settings, link.link_id), error="m").save(
        image, kind="svg", scale=8, border=2, title=link.title
    )
    return Response(
        image.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600"},
    )
