"""HTTP side of the initiator APIs: Reversal, Transaction Status, the certificate download,
and their control endpoints (ground truth, scripted results, held acknowledgements)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from pesagate.kit.asgi import DroppedConnection
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.mpesa.protocol import REVERSAL_PATH, SANDBOX_CERTIFICATE_PATH, TRANSACTION_STATUS_PATH
from pesagate.simulator.control import control_access
from pesagate.simulator.daraja import error_response, json_object, simulator_of
from pesagate.simulator.initiator import Acknowledgement
from pesagate.simulator.validation import DarajaError

router = APIRouter(tags=["Daraja"])
control_router = APIRouter(
    prefix="/control", tags=["Control"], dependencies=[Depends(control_access)]
)


@router.get(SANDBOX_CERTIFICATE_PATH, summary="The certificate that encrypts credentials")
async def certificate(request: Request) -> Response:
    pem = simulator_of(request).initiator.keys.certificate_pem
    return Response(pem, media_type="application/x-x509-ca-cert")


@router.post(REVERSAL_PATH, summary="Reversal: give a C2B payment back")
async def reversal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    sim = simulator_of(request)
    try:
        sim.check_token(authorization)
        answer = await sim.reverse(await json_object(request, "Initiator"))
    except DarajaError as error:
        return error_response(error)
    return _acknowledged(answer)


@router.post(TRANSACTION_STATUS_PATH, summary="Transaction Status: ask about a receipt")
async def transaction_status(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    sim = simulator_of(request)
    try:
        sim.check_token(authorization)
        answer = await sim.transaction_status(await json_object(request, "Initiator"))
    except DarajaError as error:
        return error_response(error)
    return _acknowledged(answer)


def _acknowledged(answer: Acknowledgement) -> Response:
    if answer.drop_response:
        return DroppedConnection()
    return JSONBytesResponse(answer.body)


@control_router.get("/reversals", summary="Every reversal M-Pesa received, oldest first")
async def list_reversals(request: Request) -> list[dict[str, Any]]:
    return [r.as_control_dict() for r in simulator_of(request).initiator.reversals]


@control_router.get("/status-queries", summary="Every Transaction Status query, oldest first")
async def list_status_queries(request: Request) -> list[dict[str, Any]]:
    return [r.as_control_dict() for r in simulator_of(request).initiator.status_queries]


class ForcedResults(BaseModel):
    codes: list[str] = Field(
        ...,
        max_length=100,
        description="result codes the next reversals end with, in order (after the "
        "initiator check): 1, 11, 21, 2006, 2028, R000001, R000002, ...",
    )


@control_router.post("/reversals/next-results", summary="Script the next reversals' results")
async def force_results(request: Request, forced: ForcedResults) -> dict[str, list[str]]:
    desk = simulator_of(request).initiator
    desk.forced_codes.extend(code.strip() for code in forced.codes if code.strip())
    return {"codes": list(desk.forced_codes)}


class HoldAcknowledgements(BaseModel):
    hold: bool


@control_router.post(
    "/reversals/hold",
    summary="Hold (or release) every initiator acknowledgement: requests are processed, "
    "their HTTP answers wait",
)
async def hold_acknowledgements(request: Request, hold: HoldAcknowledgements) -> dict[str, bool]:
    desk = simulator_of(request).initiator
    desk.hold_acknowledgements = hold.hold
    if not hold.hold:
        desk.release()
    return {"hold": desk.hold_acknowledgements}


@control_router.post(
    "/reversals/{conversation_id}/resend-result",
    summary="Send a reversal's Result (or timeout notice) once more",
)
async def resend_result(request: Request, conversation_id: str) -> dict[str, Any]:
    desk = simulator_of(request).initiator
    found = next((r for r in desk.reversals if r.conversation_id == conversation_id), None)
    if found is None:
        raise HTTPException(404, "No such reversal.")
    await desk.resend(found)
    return found.as_control_dict()


@control_router.post(
    "/transactions/{checkout_request_id}/reverse",
    summary="Reverse a payment by hand on the M-Pesa portal (no API is told)",
)
async def portal_reversal(request: Request, checkout_request_id: str) -> dict[str, Any]:
    sim = simulator_of(request)
    tx = sim.transactions.get(checkout_request_id)
    if tx is None or tx.receipt is None:
        raise HTTPException(404, "No such paid transaction.")
    if tx.reversal_receipt is not None:
        raise HTTPException(409, "Already reversed.")
    return sim.portal_reversal(tx).as_control_dict()
