"""Optional callback hardening (SPEC section 5): a source allowlist, and confirming every
success with an STK query before crediting."""

import asyncio
import hashlib
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import CallbackOutcome, Job, MpesaCallback, ResultOutcome, ReversalResult
from pesagate.payments.callback_retention import prune_refused
from tests.fixtures.servers import SHARED_SSL_CONTEXT, wait_until

# Customers who take 30 s on a prompt that lasts 10 minutes: no result of theirs arrives while
# a test forges its own callbacks.
SLOW_CUSTOMERS = {"delay_min_s": 30, "delay_max_s": 30, "prompt_ttl_s": 600}


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
    response = httpx.post(
        f"{gateway.url}/callbacks/stk/{row.callback_token}", json={}, verify=SHARED_SSL_CONTEXT
    )
    assert response.status_code == 403


def test_an_allowlisted_source_is_accepted(start_gateway):
    # No query meanwhile: the callback must be what completes it (with its receipt).
    gateway = start_gateway(callback_allowed_ips="127.0.0.1/32", reconcile_grace_s=60.0)
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
        verify=SHARED_SSL_CONTEXT,
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


def post_callback(gateway, row, body):
    return httpx.post(
        f"{gateway.url}/callbacks/stk/{row.callback_token}", json=body, verify=SHARED_SSL_CONTEXT
    )


def balance(gateway):
    return gateway.sdk().wallets.details(gateway.merchant.wallet_id)["current_balance"]


def test_a_forged_success_does_not_revive_a_cancelled_invoice(gateway):
    invoice_id = gateway.push("254700001032", amount=500)["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["failed_code"] == "1032"
    row = gateway.invoice_row(invoice_id)
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": "254700001032"})
    assert post_callback(gateway, row, forged_success(row, 500, "254700001032")).status_code == 200
    # M-Pesa is asked, says cancelled, and the invoice stays FAILED with nothing credited.
    wait_until(
        lambda: (
            gateway.sim.control("GET", f"/transactions/{row.checkout_request_id}")["queries"]
            > truth["queries"]
        ),
        what="the confirming query",
    )
    assert gateway.callbacks(invoice_id)[-1].outcome == CallbackOutcome.AWAITING_CONFIRMATION
    wait_until(lambda: not pending_jobs(gateway, row.id), what="the confirmation to finish")
    final = gateway.status(invoice_id)
    assert final["state"] == "FAILED" and final["failed_code"] == "1032"
    assert final["mpesa_reference"] is None
    assert balance(gateway) == "0.00"


@pytest.mark.parametrize("phone", ["254 7** *** 690", None], ids=["masked", "absent"])
def test_an_unverifiable_success_on_an_open_prompt_waits_for_mpesa(start_gateway, phone):
    gateway = start_gateway(
        stk_prompt_ttl_s=600,
        simulator={"delay_min_s": 30, "delay_max_s": 30, "prompt_ttl_s": 60},
    )
    invoice_id = gateway.push("254712345690", amount=500)["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    body = forged_success(row, 500, "254712345690")
    items = body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    items[2]["Value"] = phone
    assert post_callback(gateway, row, body).status_code == 200
    [callback] = gateway.callbacks(invoice_id)
    assert callback.outcome == CallbackOutcome.AWAITING_CONFIRMATION
    assert callback.note == "the phone number is masked or absent"
    assert gateway.status(invoice_id)["state"] == "PROCESSING"
    gateway.sim.http.post("/phone/254712345690/cancel")  # the real answer still counts
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "FAILED" and final["failed_code"] == "1032"
    assert balance(gateway) == "0.00"


def test_a_success_without_its_checkout_request_id_is_never_applied(start_gateway):
    gateway = start_gateway(stk_prompt_ttl_s=600, simulator=SLOW_CUSTOMERS)
    invoice_id = gateway.push("254712345691", amount=500)["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    body = forged_success(row, 500, "254712345691")
    del body["Body"]["stkCallback"]["CheckoutRequestID"]
    assert post_callback(gateway, row, body).status_code == 200
    [callback] = gateway.callbacks(invoice_id)
    assert callback.outcome == CallbackOutcome.MISMATCH
    assert gateway.status(invoice_id)["state"] == "PROCESSING"
    assert balance(gateway) == "0.00"


def test_live_mode_confirms_every_success_unless_told_otherwise():
    live = {
        "env": "live",
        "public_url": "https://pay.example.co.ke",
        "mpesa_consumer_key": "ck-real",
        "mpesa_consumer_secret": "cs-real",
        "mpesa_passkey": "pk-real",
        "mpesa_shortcode": "600100",
        "checkout_secret": "a-live-checkout-signing-secret-of-40-chars",
    }
    assert Settings(**live).confirm_successes
    assert not Settings(**live, confirm_callbacks=False).confirm_successes
    assert not Settings().confirm_successes  # sandbox: checked callbacks are trusted


@pytest.mark.parametrize("value", ["sNaN", "1e999999", "\u0661\u0660\u0660", [1], 1e308])
def test_a_malformed_amount_is_an_outcome_not_a_500(start_gateway, value):
    gateway = start_gateway(simulator=SLOW_CUSTOMERS)
    invoice_id = gateway.push("254712345692", amount=500)["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    body = forged_success(row, 500, "254712345692")
    body["Body"]["stkCallback"]["CallbackMetadata"]["Item"][0]["Value"] = value
    response = post_callback(gateway, row, body)
    assert response.status_code == 200
    [callback] = gateway.callbacks(invoice_id)
    assert callback.outcome == CallbackOutcome.MISMATCH and callback.raw_body
    assert gateway.status(invoice_id)["state"] == "PROCESSING"


@pytest.mark.parametrize("code", ["²", "1e3", "-0", "", True, None, {"a": 1}])
def test_a_result_code_that_is_not_a_number_is_stored_unparseable(gateway, code):
    invoice_id = gateway.push("254700009001")["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    body = {"Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": code}}}
    assert post_callback(gateway, row, body).status_code == 200
    stored = [cb for cb in gateway.callbacks(invoice_id) if cb.raw_body.startswith('{"Body"')]
    assert any(cb.outcome == CallbackOutcome.UNPARSEABLE for cb in stored)


def test_an_error_while_applying_keeps_the_body_and_changes_nothing(start_gateway):
    """A success whose CheckoutRequestID belongs to another invoice cannot be stored on this
    one (unique): the body is kept with outcome ERROR, and reconciliation takes over."""
    gateway = start_gateway(stk_prompt_ttl_s=600, simulator=SLOW_CUSTOMERS)
    gateway.sim.control("POST", "/customers/254712345693", json={"response_lost": True})
    lost = gateway.invoice_row(gateway.push("254712345693", amount=500)["invoice"]["invoice_id"])
    other = gateway.invoice_row(gateway.push("254712345694", amount=500)["invoice"]["invoice_id"])
    assert lost.checkout_request_id is None and other.checkout_request_id
    body = forged_success(other, 500, "254712345693")
    assert post_callback(gateway, lost, body).status_code == 200
    [callback] = gateway.callbacks(lost.invoice_id)
    assert callback.outcome == CallbackOutcome.ERROR
    assert "IntegrityError" in callback.note and callback.raw_body == body_text(body)
    assert gateway.invoice_row(lost.invoice_id).checkout_request_id is None
    assert balance(gateway) == "0.00"


def body_text(body):
    return httpx.Request("POST", "http://x", json=body).content.decode()


def pending_jobs(gateway, invoice_pk):
    return gateway.query(
        lambda s: s.scalar(select(Job.id).where(Job.key == f"reconcile:{invoice_pk}"))
    )


def refused_rows(gateway):
    return gateway.query(
        lambda s: s.scalars(select(MpesaCallback).where(MpesaCallback.invoice_id.is_(None)))
    ).all()


def test_a_callback_for_no_invoice_keeps_only_a_digest_size_and_prefix(start_gateway):
    # No query meanwhile: the real invoice below is completed by its callback (its receipt).
    gateway = start_gateway(callback_refusal_limit="3/minute", reconcile_grace_s=60.0)
    body = b'{"Body": "' + b"x" * 60_000 + b'"}'
    for _ in range(3):
        response = httpx.post(
            f"{gateway.url}/callbacks/stk/made-up-token", content=body, verify=SHARED_SSL_CONTEXT
        )
        assert response.status_code == 200
    rows = refused_rows(gateway)
    assert len(rows) == 3
    for row in rows:
        assert row.outcome == CallbackOutcome.UNKNOWN_TOKEN
        assert row.body_size == len(body) and len(row.raw_body) <= 256
        assert row.body_sha256 == hashlib.sha256(body).hexdigest()
    # Past the source's allowance: refused at once, nothing stored.
    response = httpx.post(
        f"{gateway.url}/callbacks/stk/made-up-token", content=body, verify=SHARED_SSL_CONTEXT
    )
    assert response.status_code == 429
    assert len(refused_rows(gateway)) == 3
    # A real invoice's callbacks from the same source are never limited, and kept whole.
    final = gateway.wait_final(gateway.push("254712345678")["invoice"]["invoice_id"])
    assert final["state"] == "COMPLETE" and final["mpesa_reference"]


def test_forbidden_sources_keep_only_a_prefix(start_gateway):
    gateway = start_gateway(callback_allowed_ips="10.0.0.0/8", stk_prompt_ttl_s=600)
    invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    padded = {**forged_success(row, 100, "254712345678"), "pad": "y" * 50_000}
    assert post_callback(gateway, row, padded).status_code == 403
    stored = [cb for cb in gateway.callbacks(invoice_id) if "pad" in cb.raw_body[:20_000]]
    assert stored == []
    forbidden = [
        cb for cb in gateway.callbacks(invoice_id) if cb.outcome == CallbackOutcome.FORBIDDEN_SOURCE
    ]
    assert forbidden and all(len(cb.raw_body) <= 256 for cb in forbidden)


def test_old_refused_callbacks_are_pruned_and_evidence_is_kept(gateway):
    final = gateway.wait_final(gateway.push("254712345678")["invoice"]["invoice_id"])
    httpx.post(
        f"{gateway.url}/callbacks/stk/made-up-token", json={"old": True}, verify=SHARED_SSL_CONTEXT
    )
    httpx.post(
        f"{gateway.url}/callbacks/stk/made-up-token", json={"new": True}, verify=SHARED_SSL_CONTEXT
    )

    async def age_and_prune():
        db = Database(gateway.db_url)
        try:
            async with db.transaction() as session:
                await session.execute(
                    update(MpesaCallback)
                    .values(received_at=utc_now() - timedelta(days=40))
                    .where(MpesaCallback.raw_body != '{"new":true}')
                )
            return await prune_refused(db, retention_s=30 * 86_400)
        finally:
            await db.dispose()

    assert asyncio.run(age_and_prune()) == 1
    assert [row.raw_body for row in refused_rows(gateway)] == ['{"new":true}']
    assert gateway.callbacks(final["invoice_id"])  # an invoice's callbacks are evidence


def test_posts_for_no_invoice_or_refund_share_one_allowance_on_every_result_route(start_gateway):
    gateway = start_gateway(callback_refusal_limit="3/minute")
    body = b'{"Result": "' + b"x" * 10_000 + b'"}'
    routes = ["/callbacks/stk/made-up", "/callbacks/stk/made-up/status"]
    routes.append("/callbacks/reversal/made-up/result")
    for route in routes:
        assert (
            httpx.post(f"{gateway.url}{route}", content=body, verify=SHARED_SSL_CONTEXT).status_code
            == 200
        )
    for route in routes:  # the source's allowance is spent: refused, and nothing kept
        assert (
            httpx.post(f"{gateway.url}{route}", content=body, verify=SHARED_SSL_CONTEXT).status_code
            == 429
        )
    stk = refused_rows(gateway)
    assert len(stk) == 2 and all(len(row.raw_body) <= 256 for row in stk)
    reversal = gateway.query(
        lambda s: s.scalars(select(ReversalResult).where(ReversalResult.refund_id.is_(None)))
    ).all()
    assert [row.outcome for row in reversal] == [ResultOutcome.UNKNOWN_TOKEN]
    assert len(reversal[0].raw_body) <= 512
