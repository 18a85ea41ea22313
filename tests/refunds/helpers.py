"""Shared steps of the refund tests: a paid invoice, refunds through the API, the books."""

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy import select

from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.ledger.service import findings
from pesagate.models import Job, WebhookEvent
from tests.fixtures.servers import wait_until
from tests.gateway.conftest import Gateway

# Results come at once; an unanswered reversal is asked about after 1 s, and "not reversed"
# is believed 2 s after the reversal was sent.
FAST_REFUNDS = {
    "refund_result_wait_s": 1.0,
    "refund_status_backoff_s": 0.3,
    "refund_unknown_grace_s": 2.0,
}
FAST_RESULTS = {"initiator_result_delay_s": 0.0}
FINAL = ("COMPLETED", "CANCELLED", "DISPUTED")


def start(start_gateway: Any, simulator: dict[str, Any] | None = None, **overrides: Any) -> Gateway:
    gateway: Gateway = start_gateway(
        simulator={**FAST_RESULTS, **(simulator or {})}, **{**FAST_REFUNDS, **overrides}
    )
    return gateway


def paid_invoice(gateway: Gateway, phone: str, amount: int = 100) -> dict[str, Any]:
    invoice_id = gateway.push(phone, amount)["invoice"]["invoice_id"]
    invoice = wait_until(
        lambda: (
            (inv := gateway.status(invoice_id))["state"] == "COMPLETE"
            and inv["mpesa_reference"]
            and inv
        ),
        what=f"{invoice_id} paid with a receipt",
    )
    assert isinstance(invoice, dict)
    return invoice


def refund(gateway: Gateway, invoice: dict[str, Any], **fields: Any) -> httpx.Response:
    body = {"invoice_id": invoice["invoice_id"], "amount": invoice["value"], "reason": "Other"}
    with gateway.client(gateway.merchant.secret_key) as client:
        return client.post("/chargebacks/", json={**body, **fields})


def chargeback(gateway: Gateway, chargeback_id: str) -> dict[str, Any]:
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.get(f"/chargebacks/{chargeback_id}/")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_final(gateway: Gateway, chargeback_id: str, timeout_s: float = 30) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (cb := chargeback(gateway, chargeback_id))["status"] in FINAL and cb,
        timeout_s,
        what=f"chargeback {chargeback_id} to be final",
    )
    return found


def wallet(gateway: Gateway) -> dict[str, Any]:
    with gateway.client(gateway.merchant.secret_key) as client:
        body: dict[str, Any] = client.get(f"/wallets/{gateway.merchant.wallet_id}/").json()
    return body


def books_findings(db_url: str) -> list[str]:
    async def go() -> list[str]:
        db = Database(db_url)
        try:
            return await findings(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


def outbox_state(db_url: str) -> str:
    """Every webhook event and job row, for a failure message: where a delivery stood when a
    test stopped waiting for it."""

    async def go() -> str:
        db = Database(db_url)
        try:
            async with db.read() as session:
                events = (
                    await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))
                ).scalars()
                jobs = (await session.execute(select(Job).order_by(Job.id))).scalars()
                lines = [
                    f"event {e.id} {e.ordering_key} {e.status} attempts={e.attempts} "
                    f"updated={e.updated_at:%H:%M:%S.%f} failure={e.failure_reason}"
                    for e in events
                ]
                lines += [
                    f"job {j.key} run_at={j.run_at:%H:%M:%S.%f} locked_by={j.locked_by} "
                    f"attempts={j.attempts} failures={j.failures} error={j.last_error}"
                    for j in jobs
                ]
                return f"now {utc_now():%H:%M:%S.%f}\n" + "\n".join(lines)
        finally:
            await db.dispose()

    return asyncio.run(go())


def outbox_statuses(db_url: str) -> list[str]:
    """The `status` of every webhook event written, oldest first (one endpoint's refund)."""

    async def go() -> list[str]:
        db = Database(db_url)
        try:
            async with db.read() as session:
                events = await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
                return [json.loads(event.payload)["status"] for event in events]
        finally:
            await db.dispose()

    return asyncio.run(go())


def reversals(gateway: Gateway) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = gateway.sim.control("GET", "/reversals")
    return found
