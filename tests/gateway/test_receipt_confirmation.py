"""Reconciliation confirms a held success by its receipt with Transaction Status, when the STK
query cannot tell yet; a receipt M-Pesa does not know confirms nothing."""

import httpx
from sqlalchemy import select

from pesagate.models import CallbackOutcome, Invoice, MpesaCallback
from tests.fixtures.servers import SHARED_SSL_CONTEXT, wait_until
from tests.gateway.test_callback_hardening import forged_success, post_callback


def status_rows(gateway, invoice_id):
    async def fn(session):
        invoice = await session.scalar(select(Invoice).where(Invoice.invoice_id == invoice_id))
        rows = await session.scalars(
            select(MpesaCallback).where(
                MpesaCallback.invoice_id == invoice.id,
                MpesaCallback.note.like("transaction status%"),
            )
        )
        return list(rows.all())

    return gateway.query(fn)


def completed_result(receipt, amount, **fields):
    """A Transaction Status Result calling `receipt` Completed for `amount`."""
    items = [("ReceiptNo", receipt), ("TransactionStatus", "Completed"), ("Amount", str(amount))]
    parameters = [{"Key": key, "Value": value} for key, value in items]
    result = {"ResultCode": 0, "ResultDesc": "ok", **fields}
    return {"Result": {**result, "ResultParameters": {"ResultParameter": parameters}}}


def test_a_held_success_is_confirmed_by_its_receipt(start_gateway):
    # Every success waits for M-Pesa's confirmation; this number's STK queries answer "being
    # processed" three times, so the receipt is what M-Pesa confirms first.
    gateway = start_gateway(confirm_callbacks=True, reconcile_backoff_s=2.0)
    invoice_id = gateway.push("254700009007", 150)["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"
    receipt = final["mpesa_reference"]
    queries = gateway.sim.control("GET", "/status-queries")
    assert [q["transaction_id"] for q in queries][:1] == [receipt]
    applied = wait_until(
        lambda: [r for r in status_rows(gateway, invoice_id) if r.outcome == "APPLIED"],
        what="the status Result stored",
    )
    assert applied[0].outcome == CallbackOutcome.APPLIED
    assert receipt in applied[0].note


def test_a_status_result_without_a_held_success_confirms_nothing(gateway):
    invoice_id = gateway.push("254700001032", 100)["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "FAILED"
    token = gateway.invoice_row(invoice_id).callback_token
    body = completed_result("UKS9999999", 100)
    with gateway.client() as plain:
        answer = plain.post(f"{gateway.url}/callbacks/stk/{token}/status", json=body)
        unknown = plain.post(f"{gateway.url}/callbacks/stk/not-a-token/status", json=body)
    assert answer.status_code == unknown.status_code == 200
    rows = status_rows(gateway, invoice_id)
    assert [r.outcome for r in rows] == [CallbackOutcome.MISMATCH]
    assert "not a held success's" in rows[0].note
    assert gateway.status(invoice_id)["state"] == "FAILED"


def truth_receipt(gateway, phone):
    [truth] = gateway.sim.control("GET", "/transactions", params={"phone_number": phone})
    return truth["receipt"]


def test_a_forged_receipt_posted_after_mpesas_never_becomes_the_payments(start_gateway):
    # M-Pesa's success and then a forged one, both held; the STK query says "paid" but not with
    # which receipt, so the latest held body must not decide. Transaction Status does.
    phone = "254700009007"  # its first three queries answer "being processed"
    gateway = start_gateway(confirm_callbacks=True, reconcile_backoff_s=1.0)
    gateway.sim.control("POST", "/reversals/hold", json={"hold": True})  # Results wait
    invoice_id = gateway.push(phone, 150)["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    wait_until(lambda: gateway.callbacks(invoice_id), what="M-Pesa's callback held")
    assert post_callback(gateway, row, forged_success(row, 150, phone)).status_code == 200
    gateway.sim.control("POST", "/reversals/hold", json={"hold": False})
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"
    assert final["mpesa_reference"] == truth_receipt(gateway, phone) != "UKSFORGED1"
    outcomes = {r.note: r.outcome for r in status_rows(gateway, invoice_id)}
    assert CallbackOutcome.APPLIED in outcomes.values()


def forged_alone(gateway, phone):
    """M-Pesa's callback never comes (this phone pays without one); a forged success with a
    made-up receipt is held; the query says the customer paid. The final invoice."""
    invoice_id = gateway.push(phone, 150)["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    assert post_callback(gateway, row, forged_success(row, 150, phone)).status_code == 200
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"
    assert gateway.sdk().wallets.details(gateway.merchant.wallet_id)["current_balance"] != "0.00"
    return final


def test_a_forged_receipt_alone_gives_way_to_the_statements(start_gateway):
    phone = "254700009001"
    gateway = start_gateway(confirm_callbacks=True)
    invoice_id = forged_alone(gateway, phone)["invoice_id"]
    # On a loaded machine the STK query may complete it (no receipt) before the forged
    # callback arrives; the statement names the receipt either way.
    receipt = wait_until(
        lambda: gateway.status(invoice_id)["mpesa_reference"], what="the statement's receipt"
    )
    assert receipt == truth_receipt(gateway, phone) != "UKSFORGED1"


def test_a_forged_receipt_alone_is_never_recorded_without_a_statement(start_gateway):
    # No statement to name the receipt: Transaction Status is asked about the forged one, knows
    # no such receipt, and past reconcile_max_s the invoice completes without a receipt.
    phone = "254700009001"
    gateway = start_gateway(confirm_callbacks=True, mpesa_pull_transactions=False)
    final = forged_alone(gateway, phone)
    assert final["mpesa_reference"] is None
    asked = [q["transaction_id"] for q in gateway.sim.control("GET", "/status-queries")]
    assert "UKSFORGED1" in asked


def test_a_forged_status_result_confirms_nothing(start_gateway):
    # Whoever knows the callback URL can post a Result too: a made-up receipt, held in a forged
    # success, then "Completed" for the right amount in a forged Transaction Status Result. It
    # answers no question pesagate asked (M-Pesa alone knows the ConversationID), so nothing
    # is credited, and the customer's real answer still decides.
    phone = "254712345690"
    gateway = start_gateway(
        confirm_callbacks=True,
        stk_prompt_ttl_s=600,
        simulator={"delay_min_s": 30, "delay_max_s": 30, "prompt_ttl_s": 60},
    )
    invoice_id = gateway.push(phone, amount=500)["invoice"]["invoice_id"]
    row = gateway.invoice_row(invoice_id)
    assert post_callback(gateway, row, forged_success(row, 500, phone)).status_code == 200
    result = completed_result("UKSFORGED1", 500, ConversationID="AG_20261201_forged")
    answer = httpx.post(
        f"{gateway.url}/callbacks/stk/{row.callback_token}/status",
        json=result,
        verify=SHARED_SSL_CONTEXT,
    )
    assert answer.status_code == 200
    [stored] = status_rows(gateway, invoice_id)
    assert stored.outcome == CallbackOutcome.MISMATCH
    assert "answers no question" in stored.note
    assert gateway.status(invoice_id)["state"] == "PROCESSING"
    assert gateway.sdk().wallets.details(gateway.merchant.wallet_id)["current_balance"] == "0.00"
    gateway.sim.http.post(f"/phone/{phone}/cancel")
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "FAILED" and final["failed_code"] == "1032"


def test_a_payment_completed_without_a_receipt_takes_only_mpesas(start_gateway):
    # M-Pesa's callback is lost: the query completes the invoice, without a receipt. A forged
    # success then must not give it one; M-Pesa's own callback, arriving late, does, once
    # Transaction Status confirms it.
    phone = "254700009001"  # pays; its callback is never sent
    gateway = start_gateway(confirm_callbacks=True)
    invoice_id = gateway.push(phone, 150)["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE" and final["mpesa_reference"] is None
    row = gateway.invoice_row(invoice_id)
    assert post_callback(gateway, row, forged_success(row, 150, phone)).status_code == 200
    wait_until(
        lambda: (
            "UKSFORGED1"
            in [q["transaction_id"] for q in gateway.sim.control("GET", "/status-queries")]
        ),
        what="M-Pesa asked about the forged receipt",
    )
    real = forged_success(row, 150, phone)
    items = real["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    items[1]["Value"] = truth_receipt(gateway, phone)
    assert post_callback(gateway, row, real).status_code == 200
    wait_until(
        lambda: gateway.status(invoice_id)["mpesa_reference"] == truth_receipt(gateway, phone),
        what="M-Pesa's receipt, confirmed",
    )
    outcomes = [c.outcome for c in gateway.callbacks(invoice_id)]
    assert outcomes == [CallbackOutcome.AWAITING_CONFIRMATION] * 2
