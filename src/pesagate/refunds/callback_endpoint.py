"""`POST /callbacks/reversal/{token}/{kind}`: where M-Pesa posts Reversal Results, queue
timeouts and Transaction Status Results for a refund. No API key: the unguessable path token
names the refund. Answered 200 whatever the body, duplicates included; posts for no refund are
rate limited per source as on the STK routes (`payments/callback_endpoint.py`)."""

from ipaddress import ip_address

from fastapi import APIRouter, Request

from pesagate.dependencies import DbDep, SettingsDep
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.models import ResultKind
from pesagate.payments.callback_endpoint import refusals
from pesagate.payments.responses import CallbackAccepted
from pesagate.refunds.results import ResultPolicy, receive_result

router = APIRouter(tags=["Daraja callbacks"])

KINDS = {
    "result": ResultKind.RESULT,
    "timeout": ResultKind.TIMEOUT,
    "status": ResultKind.STATUS,
    "status-timeout": ResultKind.TIMEOUT,
}
ACCEPTED: CallbackAccepted = {"ResultCode": 0, "ResultDesc": "Accepted"}


@router.post(
    "/callbacks/reversal/{token}/{kind}",
    summary="Daraja Reversal / Transaction Status result",
    responses={200: {"model": CallbackAccepted}},
)
async def reversal_result(
    token: str, kind: str, request: Request, db: DbDep, settings: SettingsDep
) -> JSONBytesResponse:
    result_kind = KINDS.get(kind)
    if result_kind is None:  # no URL of ours: answered like any other, so probing learns nothing
        return JSONBytesResponse(ACCEPTED)
    source_ip = request.client.host if request.client else None
    networks = settings.callback_networks
    if networks and not _allowed(source_ip, networks):
        return JSONBytesResponse({"detail": "Callbacks are not accepted from here."}, 403)
    policy = ResultPolicy(settings.refund_unknown_grace_s)
    outcome = await receive_result(
        db,
        token,
        result_kind,
        await request.body(),
        source_ip,
        policy,
        refusals(request, source_ip),
    )
    if outcome is None:
        return JSONBytesResponse({"detail": "Too many refused callbacks from this source."}, 429)
    return JSONBytesResponse(ACCEPTED)


def _allowed(source_ip: str | None, networks: tuple[object, ...]) -> bool:
    if source_ip is None:
        return False
    try:
        address = ip_address(source_ip)
    except ValueError:
        return False
    return any(address in network for network in networks)  # type: ignore[operator]
