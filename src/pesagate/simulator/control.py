"""The control API (sandbox only): M-Pesa's ground truth, faults and scripted customers.

It shows every merchant's payments and callback URLs and can reset or break the simulator, so
it answers only callers on this host (loopback: the tests, the dashboard in a local browser)
or callers with `Authorization: Bearer <PESAGATE_SIM_CONTROL_TOKEN>`. Behind a reverse proxy
on the same host, the proxy must pass X-Forwarded-For (uvicorn trusts it from 127.0.0.1), or
every caller looks local."""

import hmac
from ipaddress import ip_address
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from pesagate.kit.phones import is_safaricom_msisdn
from pesagate.simulator.daraja import simulator_of
from pesagate.simulator.scenarios import parse_outcome
from pesagate.simulator.state import CustomerScript, FaultProfile, TxState


async def control_access(request: Request) -> None:
    if _has_control_token(request) or _is_local(request):
        return
    raise HTTPException(
        403,
        "The control API answers callers on this host, or with the bearer token set in "
        "PESAGATE_SIM_CONTROL_TOKEN.",
    )


def _has_control_token(request: Request) -> bool:
    expected = simulator_of(request).settings.control_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return bool(
        expected
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), expected.encode())
    )


def _is_local(request: Request) -> bool:
    if request.client is None:
        return True  # a Unix socket: only this host can connect
    try:
        return ip_address(request.client.host).is_loopback
    except ValueError:
        return False


router = APIRouter(prefix="/control", tags=["Control"], dependencies=[Depends(control_access)])


@router.get("/transactions", summary="Every transaction M-Pesa accepted, newest first")
async def list_transactions(
    request: Request,
    phone_number: str | None = None,
    state: TxState | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for tx in reversed(simulator_of(request).transactions.values()):
        if phone_number is not None and tx.phone_number != phone_number:
            continue
        if state is not None and tx.state is not state:
            continue
        results.append(tx.as_control_dict())
        if limit is not None and len(results) >= limit:
            break
    return results


@router.get("/transactions/{checkout_request_id}", summary="One transaction")
async def get_transaction(request: Request, checkout_request_id: str) -> dict[str, Any]:
    tx = simulator_of(request).transactions.get(checkout_request_id)
    if tx is None:
        raise HTTPException(404, "No such transaction.")
    return tx.as_control_dict()


@router.post(
    "/transactions/{checkout_request_id}/resend-callback",
    summary="Send a final transaction's callback once more (a duplicate on demand)",
)
async def resend_callback(request: Request, checkout_request_id: str) -> dict[str, Any]:
    sim = simulator_of(request)
    tx = sim.transactions.get(checkout_request_id)
    if tx is None:
        raise HTTPException(404, "No such transaction.")
    if tx.state is not TxState.FINAL:
        raise HTTPException(409, "The transaction has no result yet.")
    await sim.resend_callback(tx)
    return tx.as_control_dict()


@router.post("/reset", summary="Forget every transaction, customer and fault")
async def reset(request: Request) -> dict[str, str]:
    await simulator_of(request).reset()
    return {"detail": "reset"}


@router.get("/faults", summary="The active fault profile")
async def get_faults(request: Request) -> FaultProfile:
    sim = simulator_of(request)
    return sim.faults.model_copy(update={"seed": sim.seed})


@router.post("/faults", summary="Replace the fault profile; omitted rates are 0")
async def set_faults(request: Request, faults: FaultProfile) -> FaultProfile:
    sim = simulator_of(request)
    sim.set_faults(faults)
    return sim.faults.model_copy(update={"seed": sim.seed})


@router.get("/customers/{msisdn}", summary="A simulated subscriber")
async def get_customer(request: Request, msisdn: str) -> dict[str, Any]:
    _check_msisdn(msisdn)
    return simulator_of(request).customer(msisdn).as_dict()


@router.post("/customers/{msisdn}", summary="Script a subscriber: balance, outcome, delay")
async def script_customer(request: Request, msisdn: str, script: CustomerScript) -> dict[str, Any]:
    _check_msisdn(msisdn)
    if script.outcome is not None:
        try:
            parse_outcome(script.outcome)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
    return simulator_of(request).script_customer(msisdn, script).as_dict()


@router.post(
    "/customers/{msisdn}/release",
    summary="Stop holding a subscriber: the open prompt goes on as scripted",
)
async def release_customer(request: Request, msisdn: str) -> dict[str, Any]:
    _check_msisdn(msisdn)
    return simulator_of(request).release_customer(msisdn).as_dict()


@router.get("/settings", summary="The simulator's settings (credentials left out)")
async def get_settings(request: Request) -> dict[str, Any]:
    settings = simulator_of(request).settings
    return settings.model_dump(
        exclude={"consumer_secret", "passkey", "control_token", "initiator_password"}
    )


@router.post("/tokens/revoke", summary="Invalidate every access token (clients must refresh)")
async def revoke_tokens(request: Request) -> dict[str, int]:
    return {"revoked": simulator_of(request).revoke_tokens()}


def _check_msisdn(msisdn: str) -> None:
    if not is_safaricom_msisdn(msisdn):
        raise HTTPException(400, "msisdn must look like 2547XXXXXXXX or 2541XXXXXXXX.")
