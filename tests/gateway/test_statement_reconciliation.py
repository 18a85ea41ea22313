"""Reconciliation from M-Pesa's statement (Pull Transactions): a push whose response and
callbacks were all lost leaves an invoice without a CheckoutRequestID, which no STK query can
settle. The statement does, by the invoice id echoed as the bill reference."""

import re
import time

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from pesagate.ledger.verify import verify
from pesagate.models import Job
from pesagate.payments.tasks import NO_RESULT_REASON, UNREAD_STATEMENT_REASON
from tests.fixtures.servers import SHARED_SSL_CONTEXT, CallbackReceiver, wait_until


@pytest.fixture
def receiver():
    started = CallbackReceiver().start()
    yield started
    started.stop()


def lose_everything(gateway, phone, outcome="approve"):
    """This customer's push responses are dropped and no callback is ever sent."""
    gateway.sim.control(
        "POST",
        f"/customers/{phone}",
        json={"outcome": outcome, "response_lost": True, "callback_lost": True},
    )


def truth_of(gateway, phone):
    [truth] = wait_until(
        lambda: (
            (t := gateway.sim.control("GET", "/transactions", params={"phone_number": phone}))
            and t[0]["state"] == "FINAL"
            and t
        )
    )
    return truth


def wallet(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        details = client.get(f"/wallets/{gateway.merchant.wallet_id}/").json()
        lines = client.get(f"/wallets/{gateway.merchant.wallet_id}/transactions/").json()
    return details, lines["results"]


def statement_checks(gateway, outcome):
    text = httpx.get(f"{gateway.url}/metrics", verify=SHARED_SSL_CONTEXT).text
    found = re.search(rf'pesagate_statement_checks_total{{outcome="{outcome}"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def reconcile_job(gateway, invoice_pk):
    return gateway.query(
        lambda s: s.scalar(select(Job.id).where(Job.key == f"reconcile:{invoice_pk}"))
    )


def add_webhook(gateway, url):
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.post("/webhooks/", json={"endpoint": url, "challenge": "stmt"})
    assert response.status_code == 200, response.text
    return response.json()["signing_secret"]


def test_a_payment_known_only_to_the_statement_completes_once(start_gateway, receiver):
    gateway = start_gateway(webhook_backoff_s=0.1)
    secret = add_webhook(gateway, receiver.url + "/hooks")
    settled_before = statement_checks(gateway, "settled")
    phone = "254712370001"
    lose_everything(gateway, phone)
    session = gateway.push(phone, amount=1500)
    invoice_id = session["invoice"]["invoice_id"]
    assert session["invoice"]["state"] == "PENDING"  # the push's outcome was unknown

    final = gateway.wait_final(invoice_id)
    truth = truth_of(gateway, phone)
    assert truth["result_code"] == 0 and truth["callbacks_sent"] == 0
    assert truth["account_reference"] == invoice_id
    assert final["state"] == "COMPLETE"
    assert final["mpesa_reference"] == truth["receipt"]
    assert final["failed_code"] is None and final["clearing_status"] == "AVAILABLE"
    row = gateway.invoice_row(invoice_id)
    assert row.checkout_request_id is None  # never learnt: only the statement knew
    assert gateway.callbacks(invoice_id) == []
    assert statement_checks(gateway, "settled") >= settled_before + 1

    # The wallet is credited exactly once, net of the fee, and the books balance; nothing is
    # left to reconcile it again.
    wait_until(lambda: not reconcile_job(gateway, row.id), what="reconciliation to end")
    details, lines = wallet(gateway)
    assert details["current_balance"] == details["available_balance"] == "1467.00"
    assert sorted((line["trans_type"], line["value"]) for line in lines) == [
        ("CHARGE", "-33.00"),
        ("SALE", "1500.00"),
    ]
    assert {line["invoice"]["invoice_id"] for line in lines} == {invoice_id}
    assert gateway.query(verify) == []

    # The merchant hears about it like any other payment.
    requests = receiver.wait_for("/hooks", count=2)
    bodies = [
        Webhook(secret).verify(r.body.decode(), {k.lower(): v for k, v in r.headers.items()})
        for r in requests
    ]
    assert [(b["invoice_id"], b["state"]) for b in bodies] == [
        (invoice_id, "PENDING"),
        (invoice_id, "COMPLETE"),
    ]
    assert bodies[-1]["mpesa_reference"] == truth["receipt"]


def test_a_customer_who_did_not_pay_still_ends_no_result(start_gateway):
    gateway = start_gateway()
    absent_before = statement_checks(gateway, "absent")
    phone = "254712370002"
    lose_everything(gateway, phone, outcome="cancel")
    invoice_id = gateway.push(phone, amount=700)["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert truth_of(gateway, phone)["result_code"] == 1032
    assert final["state"] == "FAILED"
    assert final["failed_code"] == "NO_RESULT"
    assert final["failed_reason"] == NO_RESULT_REASON
    assert final["mpesa_reference"] is None
    assert statement_checks(gateway, "absent") >= absent_before + 3  # asked on every run
    details, lines = wallet(gateway)
    assert details["current_balance"] == "0.00" and lines == []


def test_with_pull_disabled_such_a_payment_ends_no_result(start_gateway):
    gateway = start_gateway(mpesa_pull_transactions=False)
    phone = "254712370003"
    lose_everything(gateway, phone)
    invoice_id = gateway.push(phone, amount=800)["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert truth_of(gateway, phone)["result_code"] == 0  # M-Pesa took the money
    assert final["state"] == "FAILED" and final["failed_code"] == "NO_RESULT"
    assert final["failed_reason"] == NO_RESULT_REASON
    details, lines = wallet(gateway)
    assert details["current_balance"] == "0.00" and lines == []


def test_an_unreadable_statement_is_not_read_as_unpaid(start_gateway):
    # Reconciliation gives up at reconcile_max_s, or twice that while the statement cannot be
    # read; the checks run at about 0.3, 0.5, 0.9, 1.7, 3.3, 6.5 s.
    gateway = start_gateway(reconcile_max_s=5.0)
    gateway.sim.control("POST", "/faults", json={"statement_error": 1.0})
    unknown_before = statement_checks(gateway, "unknown")
    phone = "254712370004"
    lose_everything(gateway, phone)
    invoice_id = gateway.push(phone, amount=900)["invoice"]["invoice_id"]
    created = time.monotonic()
    # Past reconcile_max_s, with the statement refused on every try: still waiting.
    wait_until(
        lambda: (
            time.monotonic() - created > 5.0
            and statement_checks(gateway, "unknown") >= unknown_before + 5
        )
    )
    assert gateway.status(invoice_id)["state"] == "PENDING"
    gateway.sim.control("POST", "/faults", json={})
    final = gateway.wait_final(invoice_id)
    assert final["state"] == "COMPLETE"
    assert final["mpesa_reference"] == truth_of(gateway, phone)["receipt"]


def test_a_statement_never_readable_gives_up_late_and_says_so(start_gateway):
    gateway = start_gateway(reconcile_max_s=1.5)
    gateway.sim.control("POST", "/faults", json={"statement_error": 1.0})
    phone = "254712370005"
    lose_everything(gateway, phone)
    created = time.monotonic()  # no later than the invoice
    invoice_id = gateway.push(phone, amount=600)["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert time.monotonic() - created >= 3.0  # twice reconcile_max_s
    assert final["state"] == "FAILED" and final["failed_code"] == "NO_RESULT"
    assert final["failed_reason"] == UNREAD_STATEMENT_REASON
