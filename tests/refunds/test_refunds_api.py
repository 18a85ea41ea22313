"""Refunds end to end: the kulmipay SDK's refunds calls against a running gateway, M-Pesa's
reversal in the simulator's ground truth, the wallet's balances and the books."""

import threading
from typing import Any

import pytest
from kulmipay.exceptions import KulmiPayBadRequest
from standardwebhooks import Webhook

from tests.fixtures.servers import CallbackReceiver, wait_until
from tests.refunds.helpers import (
    books_findings,
    outbox_state,
    outbox_statuses,
    paid_invoice,
    refund,
    reversals,
    start,
    wait_final,
    wallet,
)


@pytest.fixture
def receiver():
    started = CallbackReceiver().start()
    yield started
    started.stop()


def test_sdk_refund_reverses_the_payment_once(start_gateway, receiver, db_url):
    gateway = start(start_gateway, webhook_backoff_s=0.1)
    with gateway.client(gateway.merchant.secret_key) as client:
        endpoint = client.post(
            "/webhooks/",
            json={
                "endpoint": receiver.url + "/hooks",
                "challenge": "ch",
                "collection_event": False,
                "reversal_event": True,
            },
        ).json()
    invoice = paid_invoice(gateway, "254712360001", 250)
    before = wallet(gateway)
    assert before["available_balance"] == invoice["net_amount"]
    assert gateway.status(invoice["invoice_id"]) and _refundable(gateway, invoice) is True

    sdk = gateway.sdk()
    created = sdk.refunds.create(invoice["invoice_id"], invoice["value"], "Duplicate payment")
    assert created["status"] == "PENDING"
    assert created["chargeback_id"].startswith("CB_")
    assert created["transaction"]["status"] == "CHARGEBACK-PENDING"
    assert created["staff_created"] is False
    assert created["invoice"] == invoice["invoice_id"]
    assert created["amount"] == invoice["value"]
    assert created["reason"] == "Duplicate payment"

    done = wait_final(gateway, created["chargeback_id"])
    assert done["status"] == "COMPLETED", done
    assert done["mpesa_reference"]
    assert sdk.refunds.details(created["chargeback_id"])["status"] == "COMPLETED"
    listed = sdk.refunds.retrieve()
    assert [cb["chargeback_id"] for cb in listed["results"]] == [created["chargeback_id"]]

    truth = reversals(gateway)
    assert len(truth) == 1
    assert truth[0]["reversed"] is True
    assert truth[0]["transaction_id"] == invoice["mpesa_reference"]
    assert truth[0]["receipt"] == done["mpesa_reference"]
    assert truth[0]["amount"] == 250
    after = wallet(gateway)
    assert after["available_balance"] == after["current_balance"] == "0.00"
    assert _refundable(gateway, invoice) is False
    assert books_findings(db_url) == []

    # Every status change wrote its event with it. The simulator sends the Result at once, so
    # it can beat the reversal's acknowledgement: the refund then goes PENDING -> COMPLETED and
    # no PROCESSING event is written (refunds/state.py). Either way each event written arrives,
    # signed and in order.
    written = outbox_statuses(db_url)
    assert written in (["PENDING", "PROCESSING", "COMPLETED"], ["PENDING", "COMPLETED"])
    try:
        hooks = receiver.wait_for("/hooks", count=len(written))
    except AssertionError as waited:  # where the deliveries stood
        raise AssertionError(f"{waited}\n{outbox_state(db_url)}") from waited
    bodies = [_verified(request, endpoint["signing_secret"]) for request in hooks]
    assert [body["status"] for body in bodies] == written
    assert {body["chargeback_id"] for body in bodies} == {created["chargeback_id"]}
    assert all(body["challenge"] == "ch" for body in bodies)


def _verified(request: Any, secret: str) -> Any:
    headers = {name.lower(): value for name, value in request.headers.items()}
    return Webhook(secret).verify(request.body.decode(), headers)


def _refundable(gateway, invoice) -> bool:
    with gateway.client(gateway.merchant.secret_key) as client:
        body = client.post("/payment/status/", json={"invoice_id": invoice["invoice_id"]}).json()
    return bool(body["meta"]["refundable"])


def test_the_hold_lowers_the_available_balance_at_once(start_gateway):
    # The reversal's acknowledgement is held, so the refund stays PENDING while we look.
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360002", 100)
    gateway.sim.control("POST", "/reversals/hold", json={"hold": True})
    try:
        created = refund(gateway, invoice)
        assert created.status_code == 201, created.text
        held = wallet(gateway)
        assert held["available_balance"] == "0.00"
        assert held["current_balance"] == invoice["net_amount"]
    finally:
        gateway.sim.control("POST", "/reversals/hold", json={"hold": False})
    assert wait_final(gateway, created.json()["chargeback_id"])["status"] == "COMPLETED"


def test_intasend_body_idempotency_and_refusals(start_gateway, db_url):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360003", 300)
    failed = gateway.push("254700001032", 100)["invoice"]["invoice_id"]
    gateway.wait_final(failed)
    with gateway.client(gateway.merchant.secret_key) as client:

        def post(body: dict[str, Any], **headers: str) -> Any:
            return client.post("/chargebacks/", json=body, headers=headers)

        base = {"invoice": invoice["invoice_id"], "amount": invoice["value"], "reason": "Other"}
        partial = post({**base, "amount": "100.00"})
        assert partial.status_code == 400
        assert "whole payments" in partial.json()["amount"][0]
        assert post({**base, "amount": "301.00"}).status_code == 400
        assert post({**base, "amount": "0"}).status_code == 400
        assert "reason" in post({**base, "reason": "Because"}).json()
        assert "invoice_id" in post({**base, "invoice": failed}).json()
        assert "invoice_id" in post({**base, "invoice": "NOSUCHINV1"}).json()
        assert "invoice_id" in post({"amount": "300", "reason": "Other"}).json()
        both = post({**base, "invoice_id": failed})
        assert both.status_code == 400

        body = {**base, "reason": "delayed  delivery", "reason_details": "Shipped late"}
        first = post(body, **{"Idempotency-Key": "refund-1"})
        assert first.status_code == 201, first.text
        replay = post(body, **{"Idempotency-Key": "refund-1"})
        assert replay.status_code == 201
        assert replay.json() == first.json()
        assert first.json()["reason"] == "Delayed delivery"
        assert first.json()["reason_details"] == "Shipped late"
        again = post(base)
        assert again.status_code == 400
        assert again.json() == {"amount": ["Nothing is left to refund on this invoice."]}
        other = gateway.client(gateway.other.secret_key)
        assert other.get(f"/chargebacks/{first.json()['chargeback_id']}/").status_code == 404
        assert other.get("/chargebacks/").json()["count"] == 0
        other.close()
        by_invoice = client.get("/chargebacks/", params={"invoice": invoice["invoice_id"]})
        assert by_invoice.json()["count"] == 1
        assert client.get("/chargebacks/", params={"status": "NOPE"}).status_code == 400
    wait_final(gateway, first.json()["chargeback_id"])
    with gateway.client(gateway.merchant.secret_key) as client:
        done = client.get("/chargebacks/", params={"status": "COMPLETED"}).json()
    assert done["count"] == 1
    assert books_findings(db_url) == []


def test_sdk_errors_are_bad_requests(start_gateway):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360004", 100)
    with pytest.raises(KulmiPayBadRequest):
        gateway.sdk().refunds.create(invoice["invoice_id"], "50", "Other")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("1", "CANCELLED"),
        ("2001", "CANCELLED"),
        ("8006", "CANCELLED"),
        ("R000002", "CANCELLED"),
        ("R000001", "DISPUTED"),
    ],
)
def test_failure_codes(start_gateway, db_url, code, status):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360005", 100)
    gateway.sim.control("POST", "/reversals/next-results", json={"codes": [code]})
    created = refund(gateway, invoice).json()
    done = wait_final(gateway, created["chargeback_id"])
    assert done["status"] == status
    assert code in done["resolution"]
    assert done["mpesa_reference"] is None
    balance = wallet(gateway)
    if status == "CANCELLED":  # the hold is released, and the invoice can be refunded again
        assert balance["available_balance"] == invoice["net_amount"]
        assert _refundable(gateway, invoice) is True
    else:  # already reversed elsewhere: the amount stays held for someone to look at
        assert balance["available_balance"] == "0.00"
        assert _refundable(gateway, invoice) is False
    assert balance["current_balance"] == invoice["net_amount"]
    assert books_findings(db_url) == []


def test_a_wrong_initiator_password_is_2001_and_nothing_moves(start_gateway, db_url):
    gateway = start(start_gateway, mpesa_initiator_password="not-the-password")
    invoice = paid_invoice(gateway, "254712360006", 100)
    done = wait_final(gateway, refund(gateway, invoice).json()["chargeback_id"])
    assert done["status"] == "CANCELLED"
    assert "2001" in done["resolution"]
    assert reversals(gateway)[0]["reversed"] is False
    assert wallet(gateway)["available_balance"] == invoice["net_amount"]
    assert books_findings(db_url) == []


def test_a_lost_result_is_settled_by_transaction_status(start_gateway, db_url):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360007", 100)
    gateway.sim.control("POST", "/faults", json={"reversal_result_lost": 1.0})
    done = wait_final(gateway, refund(gateway, invoice).json()["chargeback_id"])
    assert done["status"] == "COMPLETED"
    assert len(reversals(gateway)) == 1
    queries = gateway.sim.control("GET", "/status-queries")
    assert queries and {q["transaction_id"] for q in queries} == {invoice["mpesa_reference"]}
    assert wallet(gateway)["current_balance"] == "0.00"
    assert books_findings(db_url) == []


def test_a_lost_acknowledgement_and_result_are_settled_without_a_second_reversal(
    start_gateway, db_url
):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360008", 100)
    faults = {"reversal_result_lost": 1.0, "reversal_response_lost": 1.0}
    gateway.sim.control("POST", "/faults", json=faults)
    created = refund(gateway, invoice).json()
    done = wait_final(gateway, created["chargeback_id"])
    assert done["status"] == "COMPLETED"
    assert [r["reversed"] for r in reversals(gateway)] == [True]
    assert books_findings(db_url) == []


def test_duplicated_results_post_once(start_gateway, db_url):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360009", 100)
    gateway.sim.control("POST", "/faults", json={"reversal_result_duplicate": 1.0})
    created = refund(gateway, invoice).json()
    assert wait_final(gateway, created["chargeback_id"])["status"] == "COMPLETED"
    wait_until(lambda: reversals(gateway)[0]["results_answered"] == 2)
    conversation = reversals(gateway)[0]["conversation_id"]
    gateway.sim.control("POST", f"/reversals/{conversation}/resend-result")
    assert wallet(gateway)["current_balance"] == "0.00"
    assert books_findings(db_url) == []


def test_a_queue_timeout_ends_cancelled_without_a_second_reversal(start_gateway, db_url):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360010", 100)
    gateway.sim.control("POST", "/faults", json={"reversal_queue_timeout": 1.0})
    done = wait_final(gateway, refund(gateway, invoice).json()["chargeback_id"])
    assert done["status"] == "CANCELLED"
    assert "never carried out" in done["resolution"]
    assert [r["reversed"] for r in reversals(gateway)] == [False]
    assert wallet(gateway)["available_balance"] == invoice["net_amount"]
    assert books_findings(db_url) == []


def test_two_concurrent_full_refunds_one_succeeds(start_gateway, db_url):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360011", 100)
    answers: list[int] = []
    barrier = threading.Barrier(4)

    def one() -> None:
        barrier.wait()
        answers.append(refund(gateway, invoice).status_code)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201, 400, 400, 400]
    with gateway.client(gateway.merchant.secret_key) as client:
        created = client.get("/chargebacks/").json()["results"]
    assert len(created) == 1
    assert wait_final(gateway, created[0]["chargeback_id"])["status"] == "COMPLETED"
    assert len(reversals(gateway)) == 1
    assert books_findings(db_url) == []


def test_a_short_wallet_is_refused(start_gateway, db_url):
    gateway = start(start_gateway)
    invoice = paid_invoice(gateway, "254712360012", 100)
    with gateway.client(gateway.merchant.secret_key) as client:
        working = client.post("/wallets/", json={"currency": "KES", "label": "Ops"}).json()
        moved = client.post(
            f"/wallets/{gateway.merchant.wallet_id}/intra_transfer/",
            json={"wallet_id": working["wallet_id"], "amount": "10", "narrative": "ops"},
        )
        assert moved.status_code == 200, moved.text
    short = refund(gateway, invoice)
    assert short.status_code == 400
    assert "Insufficient available balance" in short.json()["amount"][0]
    assert chargeback_count(gateway) == 0
    assert reversals(gateway) == []
    assert books_findings(db_url) == []


def chargeback_count(gateway) -> int:
    with gateway.client(gateway.merchant.secret_key) as client:
        return int(client.get("/chargebacks/").json()["count"])


def test_chargeback_detail_is_404_for_unknown_ids(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        assert client.get("/chargebacks/CB_NOPE/").status_code == 404
        assert client.get("/chargebacks/", params={"page": "2"}).status_code == 404


def test_a_late_result_after_transaction_status_changes_nothing(start_gateway, db_url):
    # The Result comes 3 s late; Transaction Status settles the refund after 1 s.
    gateway = start(start_gateway, simulator={"initiator_late_s": 3.0})
    invoice = paid_invoice(gateway, "254712360013", 100)
    gateway.sim.control("POST", "/faults", json={"reversal_result_late": 1.0})
    done = wait_final(gateway, refund(gateway, invoice).json()["chargeback_id"])
    assert done["status"] == "COMPLETED"
    assert done["mpesa_reference"] is None  # Transaction Status names no reversal receipt
    wait_until(lambda: reversals(gateway)[0]["results_answered"] == 1, what="the late Result")
    assert wallet(gateway)["current_balance"] == "0.00"
    assert books_findings(db_url) == []


def test_a_wrong_password_three_times_locks_the_credential(start_gateway, db_url):
    gateway = start(start_gateway, mpesa_initiator_password="wrong")
    for n in range(4):
        invoice = paid_invoice(gateway, f"25471236002{n}", 100)
        wait_final(gateway, refund(gateway, invoice).json()["chargeback_id"])
    codes = [r["result_code"] for r in reversals(gateway)]
    assert codes == ["2001", "2001", "2001", "8006"]  # the third wrong one locks it
    with gateway.client(gateway.merchant.secret_key) as client:
        resolutions = [c["resolution"] for c in client.get("/chargebacks/").json()["results"]]
    assert sum("8006" in r for r in resolutions) == 1
    assert books_findings(db_url) == []
