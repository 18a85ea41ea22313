"""Pull Transactions (M-Pesa's statement): shape, window, paging, auth and validation."""

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pesagate.mpesa.protocol import PULL_QUERY_PATH, PULL_REGISTER_PATH, stk_password
from pesagate.simulator.settings import SANDBOX_PASSKEY
from tests.fixtures.clock import ManualClock
from tests.fixtures.daraja import BUYGOODS_STORE, NAIROBI, PAYBILL, TILL, push_body
from tests.fixtures.servers import wait_until


def nairobi(moment: datetime) -> str:
    return moment.astimezone(NAIROBI).strftime("%Y-%m-%d %H:%M:%S")


def window(before_s: float = 3600, after_s: float = 3600) -> dict[str, str]:
    now = datetime.now(NAIROBI)
    return {
        "StartDate": nairobi(now - timedelta(seconds=before_s)),
        "EndDate": nairobi(now + timedelta(seconds=after_s)),
    }


def pull(sim, offset=0, shortcode=PAYBILL, **overrides):
    body = {"ShortCode": shortcode, **window(), "OffSetValue": str(offset), **overrides}
    return sim.post(PULL_QUERY_PATH, body)


def lines(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ResponseCode"] == "1000" and body["ResponseMessage"] == "Success"
    [page] = body["Response"]  # a list inside a list
    return page


def final(sim, checkout_id):
    return wait_until(lambda: (t := sim.transaction(checkout_id))["state"] == "FINAL" and t)


def pay(sim, phone, amount=10, **fields):
    response = sim.push(phone=phone, amount=amount, **fields)
    assert response.status_code == 200, response.text
    return final(sim, response.json()["CheckoutRequestID"])


def paid_without_response_or_callback(sim, phone, amount, reference, outcome="approve"):
    """The push response is dropped and no callback is ever sent: only M-Pesa knows."""
    sim.control(
        "POST",
        f"/customers/{phone}",
        json={"outcome": outcome, "response_lost": True, "callback_lost": True},
    )
    with pytest.raises(httpx.RemoteProtocolError):
        sim.push(phone=phone, amount=amount, AccountReference=reference)
    [truth] = sim.control("GET", "/transactions", params={"phone_number": phone})
    return final(sim, truth["checkout_request_id"])


def test_register_answers_success(sim):
    body = {
        "ShortCode": PAYBILL,
        "RequestType": "Pull",
        "NominatedNumber": "0722000000",
        "CallBackURL": "https://example.com/pull",
    }
    response = sim.post(PULL_REGISTER_PATH, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ResponseRefID"]
    assert {k: v for k, v in answer.items() if k != "ResponseRefID"} == {
        "ResponseStatus": "1000",
        "ShortCode": PAYBILL,
        "ResponseDescription": "Success",
    }
    for field, value in (("RequestType", "Push"), ("NominatedNumber", "12"), ("CallBackURL", 7)):
        refused = sim.post(PULL_REGISTER_PATH, {**body, field: value})
        assert refused.status_code == 400
        assert refused.json()["errorMessage"] == f"Bad Request - Invalid {field}"


def test_a_payment_is_on_the_statement_even_without_response_or_callback(sim):
    truth = paid_without_response_or_callback(sim, "254712300001", 1500, "INVSTMT001")
    assert truth["result_code"] == 0 and truth["callbacks_sent"] == 0
    [line] = lines(pull(sim))
    assert line == {
        "transactionId": truth["receipt"],
        "trxDate": line["trxDate"],
        "msisdn": 254712300001,
        "sender": "UNKNOWN",
        "transactiontype": "c2b-pay-bill-debit",
        "billreference": "INVSTMT001",
        "amount": "1500.0",
        "organizationname": "pesagate simulator",
    }
    paid_at = datetime.strptime(line["trxDate"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(paid_at.timestamp() - time.time()) < 60  # a UTC instant, marked "Z"


def test_only_successful_payments_of_the_shortcode_are_listed(sim):
    paid = pay(sim, "254712300002", 11)
    paid_without_response_or_callback(sim, "254712300003", 12, "NOTPAID", outcome="cancel")
    pay(sim, "254700000001", 13)  # insufficient balance
    assert [line["transactionId"] for line in lines(pull(sim))] == [paid["receipt"]]
    assert lines(pull(sim, shortcode=BUYGOODS_STORE)) == []


def test_buy_goods_payments_are_on_the_store_and_till_statement(sim):
    body = push_body(phone="254712300004", amount=20)
    body.update(
        BusinessShortCode=BUYGOODS_STORE,
        Password=stk_password(BUYGOODS_STORE, SANDBOX_PASSKEY, body["Timestamp"]),
        TransactionType="CustomerBuyGoodsOnline",
        PartyB=TILL,
    )
    checkout_id = sim.post("/mpesa/stkpush/v1/processrequest", body).json()["CheckoutRequestID"]
    receipt = final(sim, checkout_id)["receipt"]
    for shortcode in (BUYGOODS_STORE, TILL):
        [line] = lines(pull(sim, shortcode=shortcode))
        assert (line["transactionId"], line["transactiontype"]) == (receipt, "c2b-buy-goods-debit")
    assert lines(pull(sim)) == []


def test_the_window_is_inclusive_and_in_nairobi_time(sim):
    receipt = pay(sim, "254712300005")["receipt"]
    [line] = lines(pull(sim))
    paid_at = datetime.strptime(line["trxDate"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    exact = {"StartDate": nairobi(paid_at), "EndDate": nairobi(paid_at + timedelta(seconds=1))}
    assert [x["transactionId"] for x in lines(pull(sim, **exact))] == [receipt]
    earlier = {"StartDate": nairobi(paid_at - timedelta(hours=1)), "EndDate": nairobi(paid_at)}
    assert lines(pull(sim, **earlier)) == []  # paid within the second after EndDate
    later = window(before_s=-60, after_s=3600)
    assert lines(pull(sim, **later)) == []
    utc_now = datetime.now(UTC)
    utc_wall_time = {  # UTC wall time read as Nairobi time is three hours in the past
        "StartDate": (utc_now - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "EndDate": (utc_now + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S"),
    }
    assert lines(pull(sim, **utc_wall_time)) == []


def test_pages_follow_the_offset_oldest_first(make_sim):
    sim = make_sim(statement_page_size=2)
    receipts = [pay(sim, f"25471230001{n}", 10 + n)["receipt"] for n in range(5)]
    pages = [[x["transactionId"] for x in lines(pull(sim, offset))] for offset in (0, 2, 4, 6)]
    assert pages == [receipts[0:2], receipts[2:4], receipts[4:], []]
    assert [x["transactionId"] for x in lines(pull(sim, offset=1))] == receipts[1:3]
    assert lines(pull(sim, offset=3, OffSetValue=3)) == lines(pull(sim, offset=3))  # a number


def test_pull_needs_a_valid_token(make_sim):
    clock = ManualClock()
    sim = make_sim(clock=clock, token_ttl_s=60)
    assert pull(sim).status_code == 200
    clock.advance(60)
    expired = pull(sim)
    assert expired.status_code == 404
    assert expired.json()["errorCode"] == "404.001.03"
    assert expired.json()["errorMessage"] == "Invalid Access Token"
    missing = sim.http.post(PULL_QUERY_PATH, json={"ShortCode": PAYBILL, **window()})
    assert missing.status_code == 404 and missing.json()["errorCode"] == "404.001.03"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ShortCode": None}, "ShortCode"),
        ({"ShortCode": "12"}, "ShortCode"),
        ({"StartDate": "yesterday"}, "StartDate"),
        ({"StartDate": None}, "StartDate"),
        ({"EndDate": "2026-13-01 00:00:00"}, "EndDate"),
        ({"StartDate": "2026-11-28 10:00:00", "EndDate": "2026-11-28 09:00:00"}, "EndDate"),
        ({"OffSetValue": "-1"}, "OffSetValue"),
        ({"OffSetValue": "ten"}, "OffSetValue"),
    ],
)
def test_bad_queries_answer_darajas_400_envelope(sim, overrides, field):
    body = {"ShortCode": PAYBILL, **window(), "OffSetValue": "0", **overrides}
    body = {k: v for k, v in body.items() if v is not None}
    response = sim.post(PULL_QUERY_PATH, body)
    assert response.status_code == 400
    answer = response.json()
    assert set(answer) == {"requestId", "errorCode", "errorMessage"}
    assert (answer["errorCode"], answer["errorMessage"]) == (
        "400.002.02",
        f"Bad Request - Invalid {field}",
    )


def test_unknown_shortcode_and_form_bodies(sim):
    unknown = pull(sim, shortcode="600000")
    assert unknown.status_code == 500
    assert unknown.json()["errorMessage"] == "Merchant does not exist"
    form = sim.post(PULL_QUERY_PATH, None, content=b"ShortCode=174379")
    assert form.status_code == 400
    assert form.json()["errorMessage"] == "Bad Request - Invalid ShortCode"


def test_the_fault_profile_can_lose_both_response_and_callback(sim, callback_receiver):
    sim.control("POST", "/faults", json={"push_response_lost": 1.0, "lost_callback": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        sim.push(phone="254712300020", CallBackURL=callback_receiver.url + "/cb")
    [truth] = sim.control("GET", "/transactions", params={"phone_number": "254712300020"})
    truth = final(sim, truth["checkout_request_id"])
    assert truth["callbacks_sent"] == 0 and callback_receiver.for_path("/cb") == []
    assert [x["transactionId"] for x in lines(pull(sim))] == [truth["receipt"]]


def test_scripted_losses_show_up_on_the_customer_and_clear(sim):
    phone = "254712300021"
    scripted = sim.control(
        "POST", f"/customers/{phone}", json={"response_lost": True, "callback_lost": True}
    )
    assert scripted["response_lost"] is True and scripted["callback_lost"] is True
    cleared = sim.control("POST", f"/customers/{phone}", json={"response_lost": None})
    assert cleared["response_lost"] is False and cleared["callback_lost"] is True
    assert sim.push(phone=phone).status_code == 200  # the response arrives again


def test_the_statement_error_fault_answers_spike_arrest(sim):
    sim.control("POST", "/faults", json={"statement_error": 1.0})
    refused = pull(sim)
    assert refused.status_code == 500
    assert refused.json()["errorCode"] == "500.003.02"
    sim.control("POST", "/faults", json={})
    assert lines(pull(sim)) == []
