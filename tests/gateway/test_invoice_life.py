"""SPEC section 5: every sandbox number ends in its right state, whatever Daraja does."""

import socket
import threading

import httpx
import pytest
from sqlalchemy import func, select

from pesagate.models import CallbackOutcome, Invoice, MpesaCallback, MpesaQuery, QueryKind
from tests.fixtures.servers import SHARED_SSL_CONTEXT, wait_until

# No reconciliation query during the test: on a loaded machine the push alone can outlast the
# fast settings' 1.3 s, and a query that completes the invoice first leaves no callback to apply.
CALLBACKS_FIRST = {"reconcile_grace_s": 60.0}


@pytest.mark.parametrize(
    ("phone", "failed_code", "reason"),
    [
        ("254700000001", "1", "The balance is insufficient for the transaction."),
        ("254700001032", "1032", "Request cancelled by user"),
        ("254700001037", "1037", "DS timeout user cannot be reached"),
        ("254700002001", "2001", "The initiator information is invalid."),
        ("254700001019", "1019", "Transaction has expired"),
    ],
)
def test_failure_numbers_fail_with_their_code(gateway, phone, failed_code, reason):
    session = gateway.push(phone)
    assert session["invoice"]["state"] == "PROCESSING"
    final = gateway.wait_final(session["invoice"]["invoice_id"])
    assert final["state"] == "FAILED"
    assert final["failed_code"] == failed_code
    assert final["failed_reason"] == reason
    assert final["mpesa_reference"] is None
    assert final["clearing_status"] is None


def test_9001_lost_callback_is_resolved_by_query(gateway):
    invoice_id = gateway.push("254700009001")["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"
    assert gateway.callbacks(invoice_id) == []  # no callback ever came
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254700009001"})
    assert truth["queries"] >= 1 and truth["callbacks_sent"] == 0


def test_9002_three_callbacks_change_the_state_once(start_gateway):
    gateway = start_gateway(**CALLBACKS_FIRST)
    invoice_id = gateway.push("254700009002")["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "COMPLETE"
    callbacks = wait_until(lambda: len(cbs := gateway.callbacks(invoice_id)) == 3 and cbs)
    outcomes = sorted(cb.outcome for cb in callbacks)
    assert outcomes == sorted(
        [CallbackOutcome.APPLIED, CallbackOutcome.DUPLICATE, CallbackOutcome.DUPLICATE]
    )
    assert len({cb.raw_body for cb in callbacks}) == 1


def queries_of(gateway, invoice_id):
    """What reconciliation asked M-Pesa about the invoice (its timeline's questions)."""

    async def fn(session):
        rows = await session.scalars(
            select(MpesaQuery).join(Invoice).where(Invoice.invoice_id == invoice_id)
        )
        return list(rows.all())

    return gateway.query(fn)


def test_9003_callback_before_the_push_response(gateway):
    invoice_id = gateway.push("254700009003")["invoice"]["invoice_id"]
    # The success came while the invoice did not know its CheckoutRequestID: it could not be
    # checked, so M-Pesa confirmed it before it was credited (by a query, or by its statement
    # when reconciliation ran before the push's answer was stored), with M-Pesa's receipt.
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254700009003"})
    assert final["mpesa_reference"] == truth["receipt"]
    asked = {(q.kind, q.answer) for q in queries_of(gateway, invoice_id)}
    assert truth["queries"] >= 1 or (QueryKind.STATEMENT, "SETTLED") in asked
    [callback] = gateway.callbacks(invoice_id)
    assert callback.outcome == CallbackOutcome.AWAITING_CONFIRMATION
    row = gateway.invoice_row(invoice_id)
    assert row.checkout_request_id == truth["checkout_request_id"] and row.merchant_request_id


def test_9004_push_refused_fails_synchronously(gateway):
    session = gateway.push("254700009004")
    invoice = session["invoice"]
    assert invoice["state"] == "FAILED"
    assert invoice["failed_code"] == "500.003.02"
    assert invoice["failed_reason"] == "Error Occurred: Spike Arrest Violation"
    assert gateway.invoice_row(invoice["invoice_id"]).checkout_request_id is None


def test_9005_lost_push_response_is_resolved_by_its_callback(gateway):
    session = gateway.push("254700009005")
    assert session["invoice"]["state"] == "PENDING"  # the outcome was unknown
    final = gateway.wait_final(session["invoice"]["invoice_id"])
    assert final["state"] == "COMPLETE"
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254700009005"})
    row = gateway.invoice_row(final["invoice_id"])
    assert row.checkout_request_id == truth["checkout_request_id"]  # learnt from the callback
    assert final["mpesa_reference"] == truth["receipt"]


def test_9006_late_callback_after_reconciliation_only_adds_the_receipt(start_gateway):
    # The query runs ~1.3 s after the push; the callback comes late enough that a loaded
    # machine (many test processes) still queries first.
    gateway = start_gateway(simulator={"late_callback_s": 8.0})
    invoice_id = gateway.push("254700009006")["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"  # by query, before the callback
    assert final["mpesa_reference"] is None  # a query carries no receipt
    [callback] = wait_until(lambda: gateway.callbacks(invoice_id))
    assert callback.outcome == CallbackOutcome.IGNORED
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254700009006"})
    assert gateway.status(invoice_id)["mpesa_reference"] == truth["receipt"]
    assert gateway.status(invoice_id)["state"] == "COMPLETE"


def test_9007_processing_answers_are_not_failures(start_gateway):
    gateway = start_gateway()
    gateway.sim.control("POST", "/faults", json={"lost_callback": 1.0})
    gateway.sim.control("POST", "/customers/254712340007", json={"outcome": "approve"})
    invoice_id = gateway.push("254700009007")["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "COMPLETE"
    # And an ordinary number whose callback is lost, with queries that often say "processing".
    gateway.sim.control(
        "POST", "/faults", json={"lost_callback": 1.0, "query_pending": 0.5, "seed": 3}
    )
    invoice_id = gateway.push("254712340007")["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "COMPLETE"
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254712340007"})
    assert truth["callbacks_sent"] == 0


def test_9008_interactive_pin(start_gateway):
    gateway = start_gateway(simulator={"prompt_ttl_s": 30})
    invoice_id = gateway.push("254700009008")["invoice"]["invoice_id"]
    wait_until(lambda: gateway.sim.http.get("/phone/254700009008/state").json()["prompt"])
    assert gateway.sim.http.post("/phone/254700009008/pin", json={"pin": "1234"}).status_code == 200
    assert gateway.wait_final(invoice_id)["state"] == "COMPLETE"
    # The first query (1.3 s after the push here) can see the PIN's success before the
    # callback arrives: COMPLETE without a receipt, which the callback then brings.
    wait_until(lambda: gateway.status(invoice_id)["mpesa_reference"], what="the receipt")


def test_late_success_after_no_result_completes(start_gateway):
    gateway = start_gateway(simulator={"prompt_ttl_s": 60}, reconcile_max_s=1.5)
    invoice_id = gateway.push("254700009008")["invoice"]["invoice_id"]
    failed = gateway.wait_final(invoice_id)
    assert failed["state"] == "FAILED"
    assert failed["failed_code"] == "NO_RESULT"
    [before] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254700009008"})
    # The customer types the PIN after all: the money moved, so the invoice completes.
    gateway.sim.http.post("/phone/254700009008/pin", json={"pin": "1234"})
    final = wait_until(lambda: (inv := gateway.status(invoice_id))["state"] == "COMPLETE" and inv)
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254700009008"})
    assert final["mpesa_reference"] == truth["receipt"]
    assert final["failed_code"] is None
    # FAILED -> COMPLETE only on M-Pesa's word: the callback waited for a query.
    assert gateway.callbacks(invoice_id)[-1].outcome == CallbackOutcome.AWAITING_CONFIRMATION
    assert truth["queries"] > before["queries"]


def test_failure_callback_after_complete_is_recorded_and_ignored(gateway):
    invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "COMPLETE"
    row = gateway.invoice_row(invoice_id)
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": row.merchant_request_id,
                "CheckoutRequestID": row.checkout_request_id,
                "ResultCode": 1032,
                "ResultDesc": "Request cancelled by user",
            }
        }
    }
    response = httpx.post(
        f"{gateway.url}/callbacks/stk/{row.callback_token}", json=body, verify=SHARED_SSL_CONTEXT
    )
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert gateway.status(invoice_id)["state"] == "COMPLETE"
    assert gateway.callbacks(invoice_id)[-1].outcome == CallbackOutcome.IGNORED


def test_concurrent_duplicate_callbacks_apply_once(start_gateway):
    gateway = start_gateway(**CALLBACKS_FIRST)
    gateway.sim.control("POST", "/faults", json={"lost_callback": 1.0})
    session = gateway.push("254712345679")
    invoice_id = session["invoice"]["invoice_id"]
    [truth] = wait_until(
        lambda: (
            (
                t := gateway.sim.control(
                    "GET", "/transactions", params={"phone_number": "254712345679"}
                )
            )
            and t[0]["state"] == "FINAL"
            and t
        )
    )
    checkout_id = truth["checkout_request_id"]
    threads = [
        threading.Thread(
            target=gateway.sim.http.post,
            args=(f"/control/transactions/{checkout_id}/resend-callback",),
        )
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    callbacks = wait_until(lambda: len(cbs := gateway.callbacks(invoice_id)) == 10 and cbs)
    assert [cb.outcome for cb in callbacks].count(CallbackOutcome.APPLIED) == 1
    assert gateway.status(invoice_id)["state"] == "COMPLETE"


def test_forged_success_with_a_wrong_amount_does_not_complete(start_gateway):
    gateway = start_gateway(simulator={"delay_min_s": 30, "delay_max_s": 30, "prompt_ttl_s": 60})
    invoice_id = gateway.push("254712345680", amount=500)["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    forged = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": row.merchant_request_id,
                "CheckoutRequestID": row.checkout_request_id,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 1.00},
                        {"Name": "MpesaReceiptNumber", "Value": "UKS0000000"},
                        {"Name": "PhoneNumber", "Value": 254712345680},
                    ]
                },
            }
        }
    }
    response = httpx.post(
        f"{gateway.url}/callbacks/stk/{row.callback_token}", json=forged, verify=SHARED_SSL_CONTEXT
    )
    assert response.status_code == 200
    assert gateway.status(invoice_id)["state"] == "PROCESSING"
    [callback] = gateway.callbacks(invoice_id)
    assert callback.outcome == CallbackOutcome.MISMATCH
    assert "amount" in callback.note


def test_unknown_token_and_garbage_callbacks_are_stored_and_answered(gateway):
    for body in (b'{"Body": {"stkCallback": {"ResultCode": 0}}}', b"not json", b""):
        response = httpx.post(
            f"{gateway.url}/callbacks/stk/not-a-token", content=body, verify=SHARED_SSL_CONTEXT
        )
        assert response.status_code == 200
        assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    count = gateway.query(lambda s: s.scalar(select(func.count()).select_from(MpesaCallback)))
    assert count == 3


def test_daraja_unreachable_fails_the_push_without_sending(start_gateway):
    gateway = start_gateway(mpesa_base_url="http://127.0.0.1:9")
    session = gateway.push("254712345681")
    assert session["invoice"]["state"] == "FAILED"
    assert session["invoice"]["failed_code"] == "PUSH_NOT_SENT"
    assert gateway.sim.control("GET", "/transactions") == []


def test_an_unreachable_daraja_fails_the_push_as_not_sent(start_gateway):
    """Through the gateway's real transport (aiohttp under httpx): a refused connection is no
    answer, never a crash; without a token nothing reached M-Pesa, so the invoice fails."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gateway = start_gateway(mpesa_base_url=f"http://127.0.0.1:{port}")
    session = gateway.push("254712340099")
    assert session["invoice"]["state"] == "FAILED"
    assert session["invoice"]["failed_code"] == "PUSH_NOT_SENT"
    assert "Cannot connect to host" in session["invoice"]["failed_reason"]
