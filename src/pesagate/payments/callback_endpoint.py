"""`POST /callbacks/stk/{token}`: where Daraja reports results. No API key: the path token
identifies the invoice (see payments/callbacks.py). Answers fast, also for duplicates."""

from fastapi import APIRouter, Request

from pesagate import metrics
from pesagate.dependencies import DbDep
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.payments.callbacks import receive_callback

router = APIRouter(tags=["Daraja callbacks"])

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@router.post("/callbacks/stk/{token}", summary="Daraja STK result callback")
async def stk_callback(token: str, request: Request, db: DbDep) -> JSONBytesResponse:
    source_ip = request.client.host if request.client else None
    outcome = await receive_callback(db, token, await request.body(), source_ip)
    metrics.CALLBACKS.labels(outcome.value).inc()
    return JSONBytesResponse(ACCEPTED)
