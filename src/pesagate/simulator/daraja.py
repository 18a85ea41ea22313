"""The Daraja endpoints: OAuth, STK push and STK query, exactly as the real service answers."""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from pesagate.kit.asgi import DroppedConnection
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.mpesa.protocol import OAUTH_PATH, STK_PUSH_PATH, STK_QUERY_PATH, ErrorCode
from pesagate.simulator import ids
from pesagate.simulator.engine import Simulator
from pesagate.simulator.validation import BadCredentials, DarajaError, invalid

router = APIRouter(tags=["Daraja"])


def simulator_of(request: Request) -> Simulator:
    sim: Simulator = request.app.state.simulator
    return sim


def error_response(error: DarajaError) -> JSONBytesResponse:
    return JSONBytesResponse(
        {
            "requestId": ids.request_id(),
            "errorCode": error.error_code,
            "errorMessage": error.message,
        },
        status_code=error.http_status,
    )


async def json_object(request: Request, first_field: str = "BusinessShortCode") -> dict[str, Any]:
    """A form or other non-JSON body fails like Daraja: as an invalid first field (the
    BusinessShortCode of the STK APIs)."""
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if "json" not in content_type.lower():
        raise invalid(first_field)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise DarajaError(400, ErrorCode.INVALID_PAYLOAD, "Invalid Request Payload") from None
    if not isinstance(body, dict):
        raise DarajaError(400, ErrorCode.INVALID_PAYLOAD, "Invalid Request Payload")
    return body


@router.get(OAUTH_PATH, summary="OAuth: client credentials -> access token")
async def generate_token(
    request: Request,
    grant_type: str | None = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    try:
        token = simulator_of(request).issue_token(grant_type, authorization)
    except BadCredentials as error:
        if simulator_of(request).settings.bad_credentials_shape == "empty":
            return Response(status_code=400)
        return error_response(error)
    except DarajaError as error:
        return error_response(error)
    return JSONBytesResponse(token)


@router.post(STK_PUSH_PATH, summary="M-Pesa Express: send an STK push")
async def stk_push(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    sim = simulator_of(request)
    try:
        sim.check_token(authorization)
        outcome = await sim.push(await json_object(request))
    except DarajaError as error:
        return error_response(error)
    if outcome.drop_response:
        return DroppedConnection()
    return JSONBytesResponse(outcome.body)


@router.post(STK_QUERY_PATH, summary="M-Pesa Express: query a push's result")
async def stk_query(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    sim = simulator_of(request)
    try:
        sim.check_token(authorization)
        answer = sim.query(await json_object(request))
    except DarajaError as error:
        return error_response(error)
    return JSONBytesResponse(answer)
