"""STK push validation: Daraja's order, Daraja's codes and messages, and nothing recorded."""

from datetime import datetime, timedelta

import pytest

from pesagate.mpesa.protocol import stk_password
from pesagate.simulator.settings import SANDBOX_PASSKEY
from tests.fixtures.daraja import PAYBILL, push_body
from tests.fixtures.digits import arabic_indic, fullwidth
from tests.fixtures.servers import wait_until


def assert_error(response, status, code, message):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"requestId", "errorCode", "errorMessage"}
    assert body["requestId"]
    assert body["errorCode"] == code
    assert body["errorMessage"] == message


def invalid(field):
    return 400, "400.002.02", f"Bad Request - Invalid {field}"


def test_form_body_fails_as_invalid_business_short_code(sim):
    response = sim.post(
        "/mpesa/stkpush/v1/processrequest",
        None,
        content="BusinessShortCode=174379&Amount=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, *invalid("BusinessShortCode"))


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"'])
def test_malformed_json_is_invalid_request_payload(sim, content):
    response = sim.post(
        "/mpesa/stkpush/v1/processrequest",
        None,
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "400.002.05", "Invalid Request Payload")


FIELD_CASES = [
    ("BusinessShortCode", None),
    ("BusinessShortCode", "17a379"),
    ("BusinessShortCode", True),
    ("Password", None),
    ("Password", ""),
    ("Timestamp", "2026-11-28 10:00"),
    ("Timestamp", "20261399250000"),
    ("Timestamp", None),
    ("TransactionType", "CustomerPay"),
    ("TransactionType", None),
    ("Amount", 10.5),
    ("Amount", "10.5"),
    ("Amount", 0),
    ("Amount", -1),
    ("Amount", 250_001),
    ("Amount", "ten"),
    ("Amount", True),
    ("Amount", None),
    ("PartyA", "0712345678"),
    ("PartyA", "+254712345678"),
    ("PartyB", "abc"),
    ("PhoneNumber", "0712345678"),
    ("PhoneNumber", "+254712345678"),
    ("PhoneNumber", "25471234567"),
    ("PhoneNumber", "255712345678"),
    ("PhoneNumber", "254212345678"),
    ("PhoneNumber", None),
    ("CallBackURL", "not a url"),
    ("CallBackURL", "ftp://example.com/cb"),
    ("CallBackURL", None),
    ("AccountReference", "ABCDEFGHIJKLM"),
    ("AccountReference", None),
    ("TransactionDesc", "ABCDEFGHIJKLMN"),
    ("TransactionDesc", None),
]


@pytest.mark.parametrize(("field", "value"), FIELD_CASES)
def test_each_invalid_field_is_reported_with_daraja_message(sim, field, value):
    name = "Remarks" if field == "TransactionDesc" else field
    body = push_body(**{field: value})
    response = sim.post("/mpesa/stkpush/v1/processrequest", body)
    assert_error(response, *invalid(name))
    assert sim.control("GET", "/transactions") == []


def test_the_first_invalid_field_in_daraja_order_wins(sim):
    body = push_body(Amount=0, PhoneNumber="07", TransactionDesc=None)
    assert_error(sim.post("/mpesa/stkpush/v1/processrequest", body), *invalid("Amount"))
    body = push_body(PhoneNumber="07", CallBackURL="x")
    assert_error(sim.post("/mpesa/stkpush/v1/processrequest", body), *invalid("PhoneNumber"))


def test_unknown_shortcode_is_merchant_does_not_exist(sim):
    body = push_body(BusinessShortCode="999999", PartyB="999999")
    response = sim.post("/mpesa/stkpush/v1/processrequest", body)
    assert_error(response, 500, "500.001.1001", "Merchant does not exist")


def test_wrong_password_is_wrong_credentials(sim):
    body = push_body(Password="d3Jvbmc=")
    response = sim.post("/mpesa/stkpush/v1/processrequest", body)
    assert_error(response, 500, "500.001.1001", "[MerchantValidate] - Wrong credentials")


def test_password_must_embed_the_timestamp_sent(sim):
    body = push_body()
    # One second earlier as a real timestamp (subtracting 1 from the digits of 12:00:00 gives
    # an invalid time, which Daraja rejects as a bad timestamp before checking the password).
    sent = datetime.strptime(body["Timestamp"], "%Y%m%d%H%M%S")
    body["Timestamp"] = (sent - timedelta(seconds=1)).strftime("%Y%m%d%H%M%S")
    response = sim.post("/mpesa/stkpush/v1/processrequest", body)
    assert_error(response, 500, "500.001.1001", "[MerchantValidate] - Wrong credentials")


def test_party_b_must_be_the_paybill(sim):
    response = sim.post("/mpesa/stkpush/v1/processrequest", push_body(PartyB="600000"))
    assert_error(response, *invalid("PartyB"))


def test_numbers_and_strings_are_both_accepted(sim):
    body = push_body(phone="254712345001", amount="15")
    body.update(BusinessShortCode=int(PAYBILL), PartyA=254712345001, PhoneNumber=254712345001)
    body.update(PartyB=int(PAYBILL), Timestamp=body["Timestamp"])
    response = sim.post("/mpesa/stkpush/v1/processrequest", body)
    assert response.status_code == 200, response.text
    assert sim.transaction(response.json()["CheckoutRequestID"])["amount"] == 15


def test_whole_float_amount_and_2541_prefix_are_accepted(sim):
    response = sim.push(phone="254112345678", amount=20.0)
    assert response.status_code == 200, response.text


def test_a_second_push_while_the_prompt_is_open_locks_the_subscriber(make_sim):
    sim = make_sim(delay_min_s=5, delay_max_s=5)
    first = sim.push(phone="254712345002")
    assert first.status_code == 200
    second = sim.push(phone="254712345002")
    assert_error(
        second,
        500,
        "500.001.1001",
        "Unable to lock subscriber, a transaction is already in process for the current subscriber",
    )
    assert len(sim.control("GET", "/transactions")) == 1
    assert sim.push(phone="254712345003").status_code == 200  # other phones are not affected


def test_the_lock_is_released_when_the_transaction_is_final(sim):
    first = sim.push(phone="254712345004").json()["CheckoutRequestID"]
    wait_until(lambda: sim.transaction(first)["state"] == "FINAL")
    assert sim.push(phone="254712345004").status_code == 200


def test_accepted_push_answers_with_string_response_code(sim):
    response = sim.push(phone="254712345005")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResponseCode",
        "ResponseDescription",
        "CustomerMessage",
    }
    assert body["ResponseCode"] == "0"
    assert body["ResponseDescription"] == "Success. Request accepted for processing"
    assert body["CustomerMessage"] == body["ResponseDescription"]


def test_timestamp_in_any_timezone_is_accepted_when_the_password_matches(sim):
    """Third-party clients send local (often UTC) time: Daraja only checks the Password."""
    ts = "20260101000000"
    password = stk_password(PAYBILL, SANDBOX_PASSKEY, ts)
    body = push_body(phone="254712345006", Timestamp=ts, Password=password)
    assert sim.post("/mpesa/stkpush/v1/processrequest", body).status_code == 200


# Digits of other scripts pass `\d`, `str.isdigit()` and `int()`, but Daraja takes ASCII digits
# only: a push that the gateway let through with them must fail here as it would there.
NON_ASCII_DIGIT_CASES = [
    ("Amount", arabic_indic("100")),  # Arabic-Indic
    ("Amount", fullwidth("100")),  # fullwidth
    ("Amount", "1_000"),
    ("Amount", "+100"),
    ("Amount", "1e2"),
    ("Amount", "1e2000000"),
    ("Amount", "9" * 5000),
    ("PhoneNumber", "2547" + arabic_indic("12345678")),
    ("PhoneNumber", "25471234" + fullwidth("5678")),
    ("PartyA", "2547" + fullwidth("12345678")),
    ("BusinessShortCode", arabic_indic("174379")),
    ("Timestamp", arabic_indic("20261128100000")),
]


def test_digits_of_other_scripts_and_odd_number_forms_are_invalid(sim):
    for field, value in NON_ASCII_DIGIT_CASES:
        response = sim.post("/mpesa/stkpush/v1/processrequest", push_body(**{field: value}))
        assert_error(response, *invalid(field))
    assert sim.control("GET", "/transactions") == []
