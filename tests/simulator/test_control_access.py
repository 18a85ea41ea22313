"""The control API (issue 12 point 8) shows every merchant's pushes and callback URLs and can
reset or break the simulator: it answers callers on this host, or callers with the control
token, and no one else.

A caller from another host is made the way a reverse proxy on this host would present one:
X-Forwarded-For, which uvicorn trusts from 127.0.0.1 (its default)."""

import httpx
import pytest

from tests.fixtures.servers import SHARED_SSL_CONTEXT

REMOTE = {"X-Forwarded-For": "203.0.113.9"}
TOKEN = "a-long-random-control-token"


def remote_calls(sim, headers):
    """Reads and changes, as a caller from another host."""
    with httpx.Client(
        base_url=f"{sim.base_url}/control", headers=headers, verify=SHARED_SSL_CONTEXT
    ) as client:
        return {
            "transactions": client.get("/transactions"),
            "faults": client.post("/faults", json={"push_error": 1.0}),
            "customer": client.post("/customers/254712345678", json={"balance": 1}),
            "reset": client.post("/reset"),
        }


@pytest.mark.parametrize("token", [None, TOKEN])
def test_other_hosts_are_refused_without_the_token(make_sim, token):
    sim = make_sim(control_token=token)
    checkout_id = sim.push(phone="254712345678", amount=10).json()["CheckoutRequestID"]
    for wrong in ({}, {"Authorization": "Bearer not-the-token"}):
        for name, response in remote_calls(sim, {**REMOTE, **wrong}).items():
            assert response.status_code == 403, name
            assert "PESAGATE_SIM_CONTROL_TOKEN" in response.json()["detail"]
    # Nothing changed: the transaction is still there, no fault, the balance untouched.
    assert sim.transaction(checkout_id)["checkout_request_id"] == checkout_id
    assert sim.control("GET", "/faults")["push_error"] == 0
    assert sim.control("GET", "/customers/254712345678")["balance"] != "1.00"


def test_other_hosts_with_the_token_are_served(make_sim):
    sim = make_sim(control_token=TOKEN)
    sim.push(phone="254712345678", amount=10)
    answers = remote_calls(sim, {**REMOTE, "Authorization": f"Bearer {TOKEN}"})
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["reset"].json() == {"detail": "reset"}
    assert sim.control("GET", "/transactions") == []
    assert TOKEN not in sim.http.get("/control/settings").text


def test_this_host_needs_no_token_and_the_pages_stay_open(make_sim):
    sim = make_sim(control_token=TOKEN)
    assert sim.http.get("/control/transactions").status_code == 200
    # The dashboard and the virtual phone are for people, wherever they are.
    with httpx.Client(base_url=sim.base_url, headers=REMOTE, verify=SHARED_SSL_CONTEXT) as client:
        assert client.get("/").status_code == 200
        assert client.get("/phone/254712345678/state").status_code == 200
