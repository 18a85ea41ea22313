"""`POST /callbacks/stk/{token}`: where Daraja reports results. No API key: the path token
identifies the invoice (see payments/callbacks.py). Answers fast, also for duplicates."""

from fastapi import APIRouter, Request

from pesagate import metrics
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.models import CallbackOutcome
from pesagate.payments.callbacks import Hardening, receive_callback

router = APIRouter(tags=["Daraja callbacks"])

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@router.post("/callbacks/stk/{token}", summary="Daraja STK result callback")
async def stk_callback(
    token: str, request: Request, db: DbDep, settings: SettingsDep
) -> JSONBytesResponse:
    source_ip = request.client.host if request.client else None
    hardening = Hardening(settings.callback_networks, settings.confirm_callbacks)
    outcome = await receive_callback(db, token, await request.body(), source_ip, hardening)
    metrics.CALLBACKS.labels(outcome.value).inc()
    if outcome == CallbackOutcome.FORBIDDEN_SOURCE:
        return JSONBytesResponse({"detail": "Callbacks are not accepted from here."}, 403)
    return JSONBytesResponse(ACCEPTED)
