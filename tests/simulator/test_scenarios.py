"""Every phone number of SPEC section 9 ends the way the spec says, as a receiver sees it."""

import threading

import httpx
import pytest

from pesagate.mpesa.protocol import stk_password
from pesagate.simulator.settings import SANDBOX_PASSKEY
from tests.fixtures.daraja import BUYGOODS_STORE, TILL, push_body
from tests.fixtures.servers import wait_until


def push_to(sim, receiver, phone, path="/cb"):
    response = sim.push(phone=phone, amount=100, CallBackURL=receiver.url + path)
    assert response.status_code == 200, response.text
    return response.json()["CheckoutRequestID"]


def final(sim, checkout_id):
    return wait_until(
        lambda: (t := sim.transaction(checkout_id))["state"] == "FINAL" and t, what="FINAL"
    )


@pytest.mark.parametrize(
    ("phone", "result_code", "result_desc"),
    [
        ("254700000001", 1, "The balance is insufficient for the transaction."),
        ("254700001032", 1032, "Request cancelled by user"),
        ("254700001037", 1037, "DS timeout user cannot be reached"),
        ("254700002001", 2001, "The initiator information is invalid."),
        ("254700001019", 1019, "Transaction has expired"),
        ("254712345678", 0, "The service request is processed successfully."),
    ],
)
def test_failure_numbers_end_with_their_result_code(
    sim, callback_receiver, phone, result_code, result_desc
):
    checkout_id = push_to(sim, callback_receiver, phone)
    [request] = callback_receiver.wait_for("/cb")
    callback = request.json()["Body"]["stkCallback"]
    assert callback["CheckoutRequestID"] == checkout_id
    assert callback["ResultCode"] == result_code
    assert callback["ResultDesc"] == result_desc
    assert ("CallbackMetadata" in callback) == (result_code == 0)
    truth = final(sim, checkout_id)
    assert truth["result_code"] == result_code
    assert (truth["receipt"] is not None) == (result_code == 0)
    assert sim.query(checkout_id).json()["ResultCode"] == str(result_code)


def test_no_answer_waits_for_the_prompt_to_expire(make_sim, callback_receiver):
    sim = make_sim(prompt_ttl_s=1.0)
    checkout_id = push_to(sim, callback_receiver, "254700001037")
    assert sim.transaction(checkout_id)["state"] == "OPEN"
    assert sim.query(checkout_id).json()["errorMessage"] == "The transaction is being processed"
    assert final(sim, checkout_id)["result_code"] == 1037


def test_9001_success_but_the_callback_is_never_sent(sim, callback_receiver):
    checkout_id = push_to(sim, callback_receiver, "254700009001")
    truth = final(sim, checkout_id)
    assert truth["result_code"] == 0 and truth["receipt"]
    assert truth["callbacks_sent"] == 0
    assert sim.query(checkout_id).json()["ResultCode"] == "0"  # the query tells the truth
    other = push_to(sim, callback_receiver, "254712345678", path="/other")
    callback_receiver.wait_for("/other")  # callbacks do flow; this one was withheld
    final(sim, other)
    assert callback_receiver.for_path("/cb") == []


def test_9002_success_callback_delivered_three_times(sim, callback_receiver):
    checkout_id = push_to(sim, callback_receiver, "254700009002")
    requests = callback_receiver.wait_for("/cb", count=3)
    assert len({r.body for r in requests}) == 1  # three identical bodies
    assert requests[0].json()["Body"]["stkCallback"]["ResultCode"] == 0
    assert final(sim, checkout_id)["callbacks_sent"] == 3


def test_9003_callback_arrives_before_the_push_response(sim, callback_receiver):
    checkout_id = push_to(sim, callback_receiver, "254700009003")
    # By the time the push answered, the receiver already had the callback.
    [request] = callback_receiver.for_path("/cb")
    assert request.json()["Body"]["stkCallback"]["CheckoutRequestID"] == checkout_id
    assert sim.transaction(checkout_id)["result_code"] == 0


def test_9004_push_refused_by_spike_arrest(sim, callback_receiver):
    response = sim.push(phone="254700009004", CallBackURL=callback_receiver.url + "/cb")
    assert response.status_code == 500
    assert response.json()["errorCode"] == "500.003.02"
    assert response.json()["errorMessage"] == "Error Occurred: Spike Arrest Violation"
    assert sim.control("GET", "/transactions") == []  # M-Pesa did nothing


def test_9005_push_response_lost_but_the_callback_still_comes(sim, callback_receiver):
    with pytest.raises(httpx.RemoteProtocolError):
        sim.push(phone="254700009005", CallBackURL=callback_receiver.url + "/cb")
    [request] = callback_receiver.wait_for("/cb")
    callback = request.json()["Body"]["stkCallback"]
    assert callback["ResultCode"] == 0
    [truth] = sim.control("GET", "/transactions")
    assert truth["checkout_request_id"] == callback["CheckoutRequestID"]
    assert truth["phone_number"] == "254700009005"


def test_9006_success_callback_arrives_after_the_prompt_ttl(make_sim, callback_receiver):
    sim = make_sim(prompt_ttl_s=0.5, late_callback_s=1.5)
    checkout_id = push_to(sim, callback_receiver, "254700009006")
    truth = final(sim, checkout_id)  # decided at once; the query already knows
    assert truth["result_code"] == 0
    assert truth["callbacks_sent"] == 0
    assert sim.query(checkout_id).json()["ResultCode"] == "0"
    [request] = callback_receiver.wait_for("/cb")
    assert request.json()["Body"]["stkCallback"]["ResultCode"] == 0
    assert sim.transaction(checkout_id)["callbacks_sent"] == 1


def test_9007_query_answers_being_processed_three_times_first(sim, callback_receiver):
    checkout_id = push_to(sim, callback_receiver, "254700009007")
    final(sim, checkout_id)
    for _ in range(3):
        response = sim.query(checkout_id)
        assert response.status_code == 500
        assert response.json()["errorMessage"] == "The transaction is being processed"
    response = sim.query(checkout_id)
    assert response.status_code == 200
    assert response.json()["ResultCode"] == "0"
    assert sim.transaction(checkout_id)["queries"] == 4


def test_9008_waits_for_the_phone_page(make_sim, callback_receiver):
    sim = make_sim(prompt_ttl_s=30)
    checkout_id = push_to(sim, callback_receiver, "254700009008")
    state = sim.http.get("/phone/254700009008/state").json()
    assert state["prompt"]["checkout_request_id"] == checkout_id
    assert sim.transaction(checkout_id)["state"] == "OPEN"
    assert sim.http.post("/phone/254700009008/pin", json={"pin": "1234"}).status_code == 200
    [request] = callback_receiver.wait_for("/cb")
    assert request.json()["Body"]["stkCallback"]["ResultCode"] == 0


def test_9008_unanswered_expires_with_1037(make_sim, callback_receiver):
    sim = make_sim(prompt_ttl_s=0.5)
    checkout_id = push_to(sim, callback_receiver, "254700009008")
    assert final(sim, checkout_id)["result_code"] == 1037


def test_scenario_numbers_ignore_faults(sim, callback_receiver):
    sim.control("POST", "/faults", json={"lost_callback": 1.0, "push_error": 1.0})
    checkout_id = push_to(sim, callback_receiver, "254700001032")
    callback_receiver.wait_for("/cb")
    assert final(sim, checkout_id)["result_code"] == 1032


def test_buy_goods_till_pushes_complete(sim, callback_receiver):
    body = push_body(phone="254712345690", CallBackURL=callback_receiver.url + "/cb")
    body.update(
        BusinessShortCode=BUYGOODS_STORE,
        Password=stk_password(BUYGOODS_STORE, SANDBOX_PASSKEY, body["Timestamp"]),
        TransactionType="CustomerBuyGoodsOnline",
        PartyB=TILL,
    )
    response = sim.post("/mpesa/stkpush/v1/processrequest", body)
    assert response.status_code == 200, response.text
    [request] = callback_receiver.wait_for("/cb")
    assert request.json()["Body"]["stkCallback"]["ResultCode"] == 0


def test_paybill_with_buy_goods_type_fails_with_2028(sim, callback_receiver):
    response = sim.push(
        phone="254712345691",
        TransactionType="CustomerBuyGoodsOnline",
        CallBackURL=callback_receiver.url + "/cb",
    )
    assert response.status_code == 200  # accepted by the API, refused by M-Pesa
    [request] = callback_receiver.wait_for("/cb")
    callback = request.json()["Body"]["stkCallback"]
    assert callback["ResultCode"] == 2028
    assert "CallbackMetadata" not in callback


def test_concurrent_pushes_to_one_phone_open_exactly_one_prompt(make_sim):
    sim = make_sim(delay_min_s=5, delay_max_s=5)
    sim.token()
    statuses = []

    def push():
        statuses.append(sim.push(phone="254712345692").status_code)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [500] * 7
    assert len(sim.control("GET", "/transactions")) == 1
