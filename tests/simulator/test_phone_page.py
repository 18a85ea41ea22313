"""The virtual phone page and the dashboard."""

from tests.fixtures.servers import wait_until

PHONE = "254700009008"


def open_prompt(sim, receiver, amount=250):
    response = sim.push(
        phone=PHONE,
        amount=amount,
        AccountReference="GQ7KZ2XPNM",
        TransactionDesc="Mama Mboga",
        CallBackURL=receiver.url + "/cb",
    )
    assert response.status_code == 200
    return response.json()["CheckoutRequestID"]


def callback_code(receiver):
    [request] = receiver.wait_for("/cb")
    return request.json()["Body"]["stkCallback"]["ResultCode"]


def test_page_is_a_phone_that_polls_its_state(make_sim):
    sim = make_sim(prompt_ttl_s=30)
    response = sim.http.get(f"/phone/{PHONE}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert PHONE in html
    assert 'id="pin"' in html and 'id="cancel"' in html and 'id="send"' in html
    assert f'const base = "/phone/{PHONE}"' in html  # no reload: the script polls /state


def test_state_shows_the_open_prompt(make_sim, callback_receiver):
    sim = make_sim(prompt_ttl_s=30)
    assert sim.http.get(f"/phone/{PHONE}/state").json()["prompt"] is None
    checkout_id = open_prompt(sim, callback_receiver)
    prompt = sim.http.get(f"/phone/{PHONE}/state").json()["prompt"]
    assert prompt["checkout_request_id"] == checkout_id
    assert prompt["amount"] == 250
    assert prompt["account_reference"] == "GQ7KZ2XPNM"
    assert prompt["transaction_desc"] == "Mama Mboga"


def test_right_pin_approves_and_debits(make_sim, callback_receiver):
    sim = make_sim(prompt_ttl_s=30)
    checkout_id = open_prompt(sim, callback_receiver)
    response = sim.http.post(f"/phone/{PHONE}/pin", json={"pin": "1234"})
    assert response.json() == {"checkout_request_id": checkout_id, "accepted": True}
    assert callback_code(callback_receiver) == 0
    state = wait_until(
        lambda: (
            (s := sim.http.get(f"/phone/{PHONE}/state").json())["last"]["state"] == "FINAL" and s
        )
    )
    assert state["prompt"] is None
    assert state["last"]["result_code"] == 0
    assert state["balance"] == "99750.00"
    assert state["messages"][0].startswith(state["last"]["receipt"] + " Confirmed. Ksh250.00")


def test_wrong_pin_fails_with_2001(make_sim, callback_receiver):
    sim = make_sim(prompt_ttl_s=30)
    checkout_id = open_prompt(sim, callback_receiver)
    sim.http.post(f"/phone/{PHONE}/pin", json={"pin": "0000"})
    assert callback_code(callback_receiver) == 2001
    assert sim.transaction(checkout_id)["result_code"] == 2001
    assert sim.control("GET", f"/customers/{PHONE}")["balance"] == "100000.00"


def test_cancel_fails_with_1032(make_sim, callback_receiver):
    sim = make_sim(prompt_ttl_s=30)
    checkout_id = open_prompt(sim, callback_receiver)
    sim.http.post(f"/phone/{PHONE}/cancel")
    assert callback_code(callback_receiver) == 1032
    assert sim.transaction(checkout_id)["result_code"] == 1032


def test_acting_without_a_prompt_is_409(sim):
    assert sim.http.post(f"/phone/{PHONE}/cancel").status_code == 409
    assert sim.http.post(f"/phone/{PHONE}/pin", json={"pin": "1234"}).status_code == 409
    assert sim.http.get("/phone/0712345678").status_code == 404


def test_any_phone_can_answer_its_prompt_before_the_customer_delay(make_sim, callback_receiver):
    sim = make_sim(delay_min_s=20, delay_max_s=20)
    sim.push(phone="254712345678", CallBackURL=callback_receiver.url + "/cb")
    sim.http.post("/phone/254712345678/cancel")
    assert callback_code(callback_receiver) == 1032


def test_dashboard_lists_recent_transactions(sim):
    html = sim.http.get("/").text
    assert "control/transactions?limit=100" in html
    assert "Daraja simulator" in html
