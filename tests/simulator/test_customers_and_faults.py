"""Simulated customers (balances, scripts, rule 17), faults, seeds and reset."""

import httpx
import pytest

from tests.fixtures.servers import wait_until


def final(sim, checkout_id):
    return wait_until(lambda: (t := sim.transaction(checkout_id))["state"] == "FINAL" and t)


def pay(sim, phone, amount, **fields):
    response = sim.push(phone=phone, amount=amount, **fields)
    assert response.status_code == 200, response.text
    return final(sim, response.json()["CheckoutRequestID"])


def test_customers_start_with_100000_and_are_debited_on_success(sim):
    assert sim.control("GET", "/customers/254712345678")["balance"] == "100000.00"
    assert pay(sim, "254712345678", 1500)["result_code"] == 0
    customer = sim.control("GET", "/customers/254712345678")
    assert customer["balance"] == "98500.00"
    assert customer["messages"][0].endswith("New M-PESA balance is Ksh98,500.00.")


def test_insufficient_balance_happens_naturally(sim):
    sim.control("POST", "/customers/254712345679", json={"balance": 50})
    assert pay(sim, "254712345679", 40)["result_code"] == 0
    assert pay(sim, "254712345679", 40)["result_code"] == 1
    assert sim.control("GET", "/customers/254712345679")["balance"] == "10.00"


def test_failed_payments_do_not_debit(sim):
    assert pay(sim, "254700001032", 500)["result_code"] == 1032
    assert sim.control("GET", "/customers/254700001032")["balance"] == "100000.00"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ("cancel", 1032),
        ("wrong_pin", 2001),
        ("insufficient", 1),
        ("expired", 1019),
        (17, 17),
        ("0", 0),
    ],
)
def test_scripted_outcomes(sim, outcome, code):
    sim.control("POST", "/customers/254712345680", json={"outcome": outcome})
    assert pay(sim, "254712345680", 10)["result_code"] == code


def test_scripted_delay_and_clearing_a_script(sim):
    sim.control("POST", "/customers/254712345681", json={"outcome": "cancel", "delay_s": 0.2})
    assert pay(sim, "254712345681", 10)["result_code"] == 1032
    cleared = sim.control("POST", "/customers/254712345681", json={"outcome": None})
    assert cleared["outcome"] is None
    assert cleared["delay_s"] == 0.2
    assert pay(sim, "254712345681", 10)["result_code"] == 0


def test_a_held_customer_acts_only_once_released(sim, callback_receiver):
    phone = "254712345684"
    assert sim.control("POST", f"/customers/{phone}", json={"hold": True})["hold"] is True
    url = callback_receiver.url + "/held"
    held = sim.push(phone=phone, CallBackURL=url).json()["CheckoutRequestID"]
    # While held, the result is not decided: the query says so, whatever the time taken.
    assert sim.query(held).json()["errorMessage"] == "The transaction is being processed"
    assert sim.transaction(held)["state"] == "OPEN"
    assert callback_receiver.for_path("/held") == []
    assert sim.control("POST", f"/customers/{phone}/release")["hold"] is False
    assert final(sim, held)["result_code"] == 0
    callback_receiver.wait_for("/held")
    assert pay(sim, phone, 10)["result_code"] == 0  # released: the next push is not held


def test_bad_scripts_are_refused(sim):
    response = sim.http.post("/control/customers/254712345682", json={"outcome": "dance"})
    assert response.status_code == 400
    response = sim.http.post("/control/customers/254712345682", json={"balance": -1})
    assert response.status_code == 422
    response = sim.http.post("/control/customers/0712", json={"balance": 1})
    assert response.status_code == 400


def test_rule_17_is_off_by_default_and_available(make_sim):
    sim = make_sim()
    assert pay(sim, "254712345683", 77)["result_code"] == 0
    assert pay(sim, "254712345683", 77)["result_code"] == 0
    strict = make_sim(rule_17=True)
    assert pay(strict, "254712345683", 77)["result_code"] == 0
    assert pay(strict, "254712345683", 77)["result_code"] == 17
    assert pay(strict, "254712345683", 78)["result_code"] == 0


def test_faults_validate_their_rates(sim):
    response = sim.http.post("/control/faults", json={"lost_callback": 1.5})
    assert response.status_code == 422
    assert sim.control("GET", "/faults")["lost_callback"] == 0


def test_push_error_fault_refuses_ordinary_numbers(sim):
    sim.control("POST", "/faults", json={"push_error": 1.0})
    response = sim.push(phone="254712345684")
    assert response.status_code == 500
    assert response.json()["errorCode"] == "500.003.02"


def test_push_response_lost_fault(sim, callback_receiver):
    sim.control("POST", "/faults", json={"push_response_lost": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        sim.push(phone="254712345685", CallBackURL=callback_receiver.url + "/cb")
    callback_receiver.wait_for("/cb")


def test_lost_duplicate_and_query_pending_faults(sim, callback_receiver):
    sim.control("POST", "/faults", json={"lost_callback": 1.0, "query_pending": 1.0})
    checkout_id = sim.push(
        phone="254712345686", CallBackURL=callback_receiver.url + "/lost"
    ).json()["CheckoutRequestID"]
    truth = final(sim, checkout_id)
    assert truth["callbacks_sent"] == 0 and truth["result_code"] == 0
    assert sim.query(checkout_id).status_code == 500  # pending though final
    sim.control("POST", "/faults", json={"duplicate_callback": 1.0})
    sim.push(phone="254712345687", CallBackURL=callback_receiver.url + "/dup")
    assert len(callback_receiver.wait_for("/dup", count=2)) == 2


def test_early_and_late_callback_faults(make_sim, callback_receiver):
    sim = make_sim(delay_min_s=5, delay_max_s=5, late_callback_s=0.5)
    sim.control("POST", "/faults", json={"early_callback": 1.0})
    sim.push(phone="254712345688", CallBackURL=callback_receiver.url + "/early")
    assert len(callback_receiver.for_path("/early")) == 1  # already there when the push answered
    sim.control("POST", "/faults", json={"late_callback": 1.0})
    checkout_id = sim.push(
        phone="254712345689", CallBackURL=callback_receiver.url + "/late"
    ).json()["CheckoutRequestID"]
    sim.http.post("/phone/254712345689/pin", json={"pin": "1234"})
    truth = final(sim, checkout_id)
    assert truth["callbacks_sent"] == 0  # final, but the callback is held back
    callback_receiver.wait_for("/late")


FAULTS = {
    "lost_callback": 0.3,
    "duplicate_callback": 0.3,
    "push_error": 0.2,
    "push_response_lost": 0.2,
    "query_pending": 0.5,
}


def run_seeded(sim, seed):
    """A fixed sequence of pushes under faults; returns everything the seed should decide."""
    sim.control("POST", "/faults", json={"seed": seed, **FAULTS})
    outcomes = []
    for n in range(20):
        try:
            response = sim.push(phone=f"2547123457{n:02d}", amount=10 + n)
            outcomes.append(response.status_code)
        except httpx.RemoteProtocolError:
            outcomes.append("dropped")
    truths = [final(sim, t["checkout_request_id"]) for t in sim.control("GET", "/transactions")]
    return outcomes, [(t["merchant_request_id"], t["receipt"], t["phone_number"]) for t in truths]


def test_a_seed_reproduces_every_random_choice(make_sim):
    first = run_seeded(make_sim(), seed=42)
    second = run_seeded(make_sim(), seed=42)
    other = run_seeded(make_sim(), seed=43)
    assert first == second
    assert first != other
    assert "dropped" in first[0] and 500 in first[0] and 200 in first[0]


def test_reset_forgets_transactions_customers_and_faults(sim):
    sim.control("POST", "/faults", json={"lost_callback": 1.0})
    sim.control("POST", "/customers/254712345690", json={"balance": 5})
    pay(sim, "254712345691", 10)
    assert sim.control("POST", "/reset") == {"detail": "reset"}
    assert sim.control("GET", "/transactions") == []
    assert sim.control("GET", "/faults")["lost_callback"] == 0
    assert sim.control("GET", "/customers/254712345690")["balance"] == "100000.00"
    assert sim.push(phone="254712345691").status_code == 200  # tokens survive a reset


def test_transactions_list_filters(sim):
    pay(sim, "254712345692", 10)
    pay(sim, "254712345693", 11)
    assert [t["amount"] for t in sim.control("GET", "/transactions")] == [11, 10]  # newest first
    only = sim.control("GET", "/transactions", params={"phone_number": "254712345692"})
    assert [t["amount"] for t in only] == [10]
    assert len(sim.control("GET", "/transactions", params={"limit": 1})) == 1
    assert sim.http.get("/control/transactions/ws_CO_nope").status_code == 404
