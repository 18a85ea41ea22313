"""STK query: pending in both shapes, final answers all strings, unknown ids."""

import pytest

from tests.fixtures.servers import wait_until

QUERY_PATH = "/mpesa/stkpushquery/v1/query"


def test_final_answer_is_all_strings_with_three_s_successsfully(sim):
    checkout_id = sim.push(phone="254712340001").json()["CheckoutRequestID"]
    wait_until(lambda: sim.transaction(checkout_id)["state"] == "FINAL")
    response = sim.query(checkout_id)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": sim.transaction(checkout_id)["merchant_request_id"],
        "CheckoutRequestID": checkout_id,
        "ResultCode": "0",
        "ResultDesc": "The service request is processed successfully.",
    }
    assert all(isinstance(value, str) for value in body.values())


def test_final_failure_answer_carries_the_result_code_as_a_string(sim):
    checkout_id = sim.push(phone="254700001032").json()["CheckoutRequestID"]
    wait_until(lambda: sim.transaction(checkout_id)["state"] == "FINAL")
    body = sim.query(checkout_id).json()
    assert body["ResultCode"] == "1032"
    assert body["ResultDesc"] == "Request cancelled by user"


def test_pending_answer_as_http_500_being_processed_by_default(make_sim):
    sim = make_sim(delay_min_s=5, delay_max_s=5)
    checkout_id = sim.push(phone="254712340002").json()["CheckoutRequestID"]
    response = sim.query(checkout_id)
    assert response.status_code == 500
    assert response.json()["errorCode"] == "500.001.1001"
    assert response.json()["errorMessage"] == "The transaction is being processed"
    assert sim.transaction(checkout_id)["queries"] == 1


def test_pending_answer_as_4999_when_selected(make_sim):
    sim = make_sim(delay_min_s=5, delay_max_s=5, query_pending_shape="4999")
    checkout_id = sim.push(phone="254712340003").json()["CheckoutRequestID"]
    response = sim.query(checkout_id)
    assert response.status_code == 200
    body = response.json()
    assert body["ResultCode"] == "4999"
    assert body["ResultDesc"] == "The transaction is still under processing"
    assert body["ResponseCode"] == "0"


def test_unknown_checkout_request_id_does_not_exist(sim):
    response = sim.query("ws_CO_01012026000000000712345678")
    assert response.status_code == 500
    assert response.json()["errorCode"] == "500.001.1001"
    assert response.json()["errorMessage"] == "The transaction does not Exist"


@pytest.mark.parametrize(
    ("override", "status", "message"),
    [
        ({"CheckoutRequestID": None}, 400, "Bad Request - Invalid CheckoutRequestID"),
        ({"Timestamp": "yesterday"}, 400, "Bad Request - Invalid Timestamp"),
        ({"Password": "d3Jvbmc="}, 500, "[MerchantValidate] - Wrong credentials"),
        ({"BusinessShortCode": "12"}, 400, "Bad Request - Invalid BusinessShortCode"),
    ],
)
def test_query_validation(sim, override, status, message):
    response = sim.query("ws_CO_01012026000000000712345678", **override)
    assert response.status_code == status
    assert response.json()["errorMessage"] == message


def test_query_needs_a_valid_token(sim):
    response = sim.http.post(QUERY_PATH, json={}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 404
    assert response.json()["errorCode"] == "404.001.03"
