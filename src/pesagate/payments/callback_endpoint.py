"""`POST /callbacks/stk/{token}`: where Daraja reports results. No API key: the path token
identifies the invoice (see payments/callbacks.py). Answers fast, also for duplicates.

Posts that speak for no invoice (or come from a forbidden source), on this route and on the
Transaction Status and Reversal Result routes, are rate limited per source address: past
`PESAGATE_CALLBACK_REFUSAL_LIMIT` they are answered 429 and not stored at all. Callbacks for
real invoices are never limited: Safaricom sends every merchant's callbacks from a few
addresses."""

from fastapi import APIRouter, Request

from pesagate import metrics
from pesagate.dependencies import DbDep, SettingsDep, app_db, app_settings
from pesagate.kit.api import DirectRoute
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.merchants.ratelimit import RateLimiter, allowance
from pesagate.models import CallbackOutcome
from pesagate.payments.callbacks import (
    CallbackPolicy,
    Received,
    RefusalAllowance,
    receive_callback,
)
from pesagate.payments.receipts import receive_status
from pesagate.payments.responses import CallbackAccepted

router = APIRouter(tags=["Daraja callbacks"], route_class=DirectRoute)

ACCEPTED: CallbackAccepted = {"ResultCode": 0, "ResultDesc": "Accepted"}


@router.post(
    "/callbacks/stk/{token}",
    summary="Daraja STK result callback",
    responses={200: {"model": CallbackAccepted}},
)
async def stk_callback(token: str, request: Request) -> JSONBytesResponse:
    db, settings = app_db(request), app_settings(request)
    source_ip = request.client.host if request.client else None
    policy = CallbackPolicy(
        settings.callback_networks,
        settings.confirm_successes,
        settings.transaction_status_enabled,
    )
    received = await receive_callback(
        db, token, await request.body(), source_ip, policy, refusals(request, source_ip)
    )
    return _answer(received)


@router.post(
    "/callbacks/stk/{token}/status",
    summary="Daraja Transaction Status result about a held success's receipt",
    responses={200: {"model": CallbackAccepted}},
)
async def transaction_status_result(
    token: str, request: Request, db: DbDep, settings: SettingsDep
) -> JSONBytesResponse:
    source_ip = request.client.host if request.client else None
    policy = CallbackPolicy(settings.callback_networks, settings.confirm_successes)
    received = await receive_status(
        db, token, await request.body(), source_ip, policy, refusals(request, source_ip)
    )
    return _answer(received)


def refusals(request: Request, source_ip: str | None) -> RefusalAllowance:
    """The source's allowance of refused posts (`PESAGATE_CALLBACK_REFUSAL_LIMIT`), shared by
    every Daraja result route."""
    limiter: RateLimiter = request.app.state.services.callback_refusals
    return allowance(limiter, f"callback-refusals:{source_ip}")


def _answer(received: Received) -> JSONBytesResponse:
    metrics.CALLBACKS.labels(received.outcome.value if received.stored else "THROTTLED").inc()
    if not received.stored:
        return JSONBytesResponse({"detail": "Too many refused callbacks from this source."}, 429)
    if received.outcome == CallbackOutcome.FORBIDDEN_SOURCE:
        return JSONBytesResponse({"detail": "Callbacks are not accepted from here."}, 403)
    return JSONBytesResponse(ACCEPTED)
