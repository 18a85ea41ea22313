"""The virtual phone (`/phone/{msisdn}`) and the dashboard (`/`): M-Pesa for humans.

The pages are plain HTML with a little JavaScript that polls a JSON state endpoint, so a prompt
appears and disappears without a reload. Links are built from the ASGI root path, so the pages
work both standalone and mounted at `/sim` inside the gateway.
"""

from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from pesagate.kit.phones import is_safaricom_msisdn
from pesagate.simulator.daraja import simulator_of
from pesagate.simulator.engine import CANCEL_ACTION, PIN_ACTION_PREFIX
from pesagate.simulator.state import TxState

router = APIRouter(tags=["Virtual phone"])


class PinEntry(BaseModel):
    pin: str = Field(min_length=1, max_length=12)


def _page(name: str, request: Request, **values: str) -> HTMLResponse:
    html = resources.files("pesagate.simulator").joinpath("templates", name).read_text()
    values["ROOT"] = request.scope.get("root_path", "")
    for key, value in values.items():
        html = html.replace("{{" + key + "}}", value)
    return HTMLResponse(html)


def _msisdn(msisdn: str) -> str:
    if not is_safaricom_msisdn(msisdn):
        raise HTTPException(404, "Not a Safaricom number (2547XXXXXXXX or 2541XXXXXXXX).")
    return msisdn


@router.get("/", response_class=HTMLResponse, summary="Dashboard: recent transactions")
async def dashboard(request: Request) -> HTMLResponse:
    return _page("dashboard.html", request)


@router.get("/phone/{msisdn}", response_class=HTMLResponse, summary="A virtual phone")
async def phone_page(request: Request, msisdn: str) -> HTMLResponse:
    return _page("phone.html", request, MSISDN=_msisdn(msisdn))


@router.get("/phone/{msisdn}/state", summary="What the phone shows now")
async def phone_state(request: Request, msisdn: str) -> dict[str, Any]:
    sim = simulator_of(request)
    customer = sim.customer(_msisdn(msisdn))
    prompt = sim.open_prompt(msisdn)
    last = sim.transactions.get(customer.last_checkout_id or "")
    return {
        **customer.as_dict(),
        "prompt": None if prompt is None else _prompt(prompt, sim.settings.prompt_ttl_s),
        "last": None
        if last is None
        else {
            "checkout_request_id": last.checkout_request_id,
            "state": last.state.value,
            "result_code": last.result_code,
            "result_desc": last.result_desc,
            "receipt": last.receipt,
        },
    }


def _prompt(tx: Any, ttl_s: float) -> dict[str, Any]:
    return {
        "checkout_request_id": tx.checkout_request_id,
        "amount": tx.amount,
        "business_short_code": tx.shortcode,
        "account_reference": tx.account_reference,
        "transaction_desc": tx.transaction_desc,
        "created_at": tx.created_at.isoformat(),
        "ttl_s": ttl_s,
    }


@router.post("/phone/{msisdn}/pin", summary="Type the M-Pesa PIN for the open prompt")
async def enter_pin(request: Request, msisdn: str, entry: PinEntry) -> dict[str, Any]:
    return _act(request, msisdn, PIN_ACTION_PREFIX + entry.pin)


@router.post("/phone/{msisdn}/cancel", summary="Cancel the open prompt")
async def cancel_prompt(request: Request, msisdn: str) -> dict[str, Any]:
    return _act(request, msisdn, CANCEL_ACTION)


def _act(request: Request, msisdn: str, action: str) -> dict[str, Any]:
    tx = simulator_of(request).customer_acts(_msisdn(msisdn), action)
    if tx is None or tx.state is TxState.FINAL:
        raise HTTPException(409, "No prompt is open on this phone.")
    return {"checkout_request_id": tx.checkout_request_id, "accepted": True}
