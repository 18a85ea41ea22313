"""Optional callback hardening (SPEC section 5): a source allowlist, and confirming every
success with an STK query before crediting."""

import httpx
import pytest

from pesagate.config import Settings
from pesagate.models import CallbackOutcome
from tests.fixtures.servers import wait_until


def forged_success(invoice_row, amount, phone):
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": invoice_row.merchant_request_id,
                "CheckoutRequestID": invoice_row.checkout_request_id,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": amount},
                        {"Name": "MpesaReceiptNumber", "Value": "UKSFORGED1"},
                        {"Name": "PhoneNumber", "Value": int(phone)},
                    ]
                },
            }
        }
    }


def test_callbacks_from_outside_the_allowlist_are_refused_and_stored(start_gateway):
    gateway = start_gateway(callback_allowed_ips="10.0.0.0/8, 196.201.212.0/24")
    invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
    [callback] = wait_until(lambda: gateway.callbacks(invoice_id))
    assert callback.outcome == CallbackOutcome.FORBIDDEN_SOURCE
    assert callback.source_ip == "127.0.0.1" and callback.raw_body
    final = gateway.wait_final(invoice_id)  # settled by reconciliation instead
    assert final["state"] == "COMPLETE" and final["mpesa_reference"] is None
    row = gateway.invoice_row(invoice_id)
    response = httpx.post(f"{gateway.url}/callbacks/stk/{row.callback_token}", json={})
    assert response.status_code == 403


def test_an_allowlisted_source_is_accepted(start_gateway):
    gateway = start_gateway(callback_allowed_ips="127.0.0.1/32")
    invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE" and final["mpesa_reference"]
    assert gateway.callbacks(invoice_id)[0].outcome == CallbackOutcome.APPLIED


def test_confirmed_successes_complete_with_the_callbacks_receipt(start_gateway):
    gateway = start_gateway(confirm_callbacks=True, stk_prompt_ttl_s=600)
    invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254712345678"})
    assert final["mpesa_reference"] == truth["receipt"]
    assert truth["queries"] >= 1  # M-Pesa was asked before the money was credited
    assert gateway.callbacks(invoice_id)[0].outcome == CallbackOutcome.AWAITING_CONFIRMATION


def test_a_forged_success_with_the_right_amount_is_not_credited_when_confirming(start_gateway):
    gateway = start_gateway(
        confirm_callbacks=True,
        stk_prompt_ttl_s=600,
        simulator={"delay_min_s": 30, "delay_max_s": 30, "prompt_ttl_s": 60},
    )
    invoice_id = gateway.push("254712345690", amount=500)["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    response = httpx.post(
        f"{gateway.url}/callbacks/stk/{row.callback_token}",
        json=forged_success(row, 500.00, "254712345690"),
    )
    assert response.status_code == 200
    # M-Pesa says the customer has not paid: the forged success changes nothing.
    wait_until(
        lambda: (
            gateway.sim.control("GET", f"/transactions/{row.checkout_request_id}")["queries"] >= 1
        )
    )
    assert gateway.status(invoice_id)["state"] == "PROCESSING"
    gateway.sim.http.post("/phone/254712345690/cancel")
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "FAILED" and final["failed_code"] == "1032"
    assert gateway.sdk().wallets.details(gateway.merchant.wallet_id)["current_balance"] == "0.00"


def test_a_bad_allowlist_is_refused_at_start():
    with pytest.raises(ValueError):
        Settings(callback_allowed_ips="10.0.0.0/8, not-a-network")
