"""Result callbacks as a real HTTP receiver gets them: exact bodies, headers and timing."""

import json
import re
from datetime import datetime, timedelta, timezone

from tests.fixtures.servers import wait_until

NAIROBI = timezone(timedelta(hours=3))


def push_to(sim, receiver, phone, amount=1500, path="/callbacks/stk/tok123"):
    response = sim.push(phone=phone, amount=amount, CallBackURL=receiver.url + path)
    assert response.status_code == 200, response.text
    return response.json()


def test_success_callback_body_is_exactly_darajas(sim, callback_receiver):
    accepted = push_to(sim, callback_receiver, "254712345678")
    [request] = callback_receiver.wait_for("/callbacks/stk/tok123")
    assert request.headers["Content-Type"] == "application/json;charset=UTF-8"
    raw = request.body.decode()
    assert '{"Name":"Amount","Value":1500.00}' in raw  # two decimals, as Daraja writes it
    assert '{"Name":"Balance"}' in raw  # Balance has no Value
    body = json.loads(raw)
    callback = body["Body"]["stkCallback"]
    assert list(callback) == [
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResultCode",
        "ResultDesc",
        "CallbackMetadata",
    ]
    assert callback["MerchantRequestID"] == accepted["MerchantRequestID"]
    assert callback["CheckoutRequestID"] == accepted["CheckoutRequestID"]
    assert callback["ResultCode"] == 0
    assert callback["ResultDesc"] == "The service request is processed successfully."
    items = callback["CallbackMetadata"]["Item"]
    assert [item["Name"] for item in items] == [
        "Amount",
        "MpesaReceiptNumber",
        "Balance",
        "TransactionDate",
        "PhoneNumber",
    ]
    values = {item["Name"]: item.get("Value") for item in items}
    assert values["Amount"] == 1500.0
    assert values["PhoneNumber"] == 254712345678
    assert re.fullmatch(r"[A-Z0-9]{10}", values["MpesaReceiptNumber"])
    paid_at = datetime.strptime(str(values["TransactionDate"]), "%Y%m%d%H%M%S").replace(
        tzinfo=NAIROBI
    )
    assert abs((datetime.now(NAIROBI) - paid_at).total_seconds()) < 60  # Nairobi time, not UTC

    truth = sim.transaction(accepted["CheckoutRequestID"])
    assert truth["receipt"] == values["MpesaReceiptNumber"]
    assert truth["callbacks_sent"] == 1
    assert truth["callback_body"] == body


def test_failure_callback_has_no_callback_metadata(sim, callback_receiver):
    push_to(sim, callback_receiver, "254700002001")
    [request] = callback_receiver.wait_for("/callbacks/stk/tok123")
    callback = request.json()["Body"]["stkCallback"]
    assert "CallbackMetadata" not in callback
    assert callback["ResultCode"] == 2001
    assert callback["ResultDesc"] == "The initiator information is invalid."


def test_the_callback_path_is_preserved_with_its_query(sim, callback_receiver):
    push_to(sim, callback_receiver, "254712345601", path="/callbacks/stk/abc?x=1")
    callback_receiver.wait_for("/callbacks/stk/abc?x=1")


def test_an_undeliverable_callback_is_logged_not_retried(sim):
    accepted = sim.push(phone="254712345602", CallBackURL="http://127.0.0.1:9/nobody").json()
    tx = wait_until(
        lambda: (t := sim.transaction(accepted["CheckoutRequestID"]))["callbacks_failed"] and t
    )
    assert tx["callbacks_sent"] == 1
    assert tx["callbacks_answered"] == 0
    assert tx["callbacks_failed"] == 1
    assert tx["state"] == "FINAL"


def test_callbacks_are_sent_concurrently(make_sim, callback_receiver):
    """A slow receiver does not hold up other callbacks: the sender is one shared async pool."""
    sim = make_sim()
    callback_receiver.delay_s = 0.5
    for n in range(10):
        push_to(sim, callback_receiver, f"25471234{5610 + n}", path=f"/cb/{n}")
    wait_until(lambda: len(callback_receiver.received) == 10)
    assert callback_receiver.max_in_flight > 1


def test_the_timeout_counts_the_receivers_time_not_the_queue(make_sim, callback_receiver):
    """Daraja sends each callback on its own: one waiting for the simulator's own connections
    (here one) is not late, while one whose receiver answers too slowly is."""
    sim = make_sim(callback_max_connections=1, callback_timeout_s=1.0)
    callback_receiver.delay_s = 0.4  # four in a row take 1.6 s, each 0.4 s once sent
    checkouts = [
        push_to(sim, callback_receiver, f"25471234{5630 + n}", path=f"/queued/{n}")
        for n in range(4)
    ]

    def answered() -> list[int]:
        return [sim.transaction(c["CheckoutRequestID"])["callbacks_answered"] for c in checkouts]

    assert wait_until(lambda: answered() == [1, 1, 1, 1], timeout_s=20)
    assert callback_receiver.max_in_flight == 1

    callback_receiver.delay_s = 1.5
    late = push_to(sim, callback_receiver, "254712345640", path="/late")["CheckoutRequestID"]
    tx = wait_until(lambda: (t := sim.transaction(late))["callbacks_failed"] and t)
    assert (tx["callbacks_sent"], tx["callbacks_answered"]) == (1, 0)
