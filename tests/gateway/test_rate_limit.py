"""Rate limits per API key (SPEC section 7): 429 with Retry-After; shared through Redis."""

import socket

import pytest
from sqlalchemy import func, select

from pesagate.config import Settings
from pesagate.models import Customer, Invoice


def burst(gateway, key, count):
    with gateway.client(key) as client:
        return [client.get("/invoices/") for _ in range(count)]


def test_over_the_limit_is_429_with_retry_after(start_gateway):
    gateway = start_gateway(rate_limit="5/minute")
    responses = burst(gateway, gateway.merchant.secret_key, 7)
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 2
    throttled = responses[-1]
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert throttled.json()["detail"].startswith("Request was throttled.")
    # Limits are per API key: another merchant is not affected.
    assert burst(gateway, gateway.other.secret_key, 1)[0].status_code == 200


def test_public_key_calls_count_too(start_gateway):
    gateway = start_gateway(rate_limit="2/minute")
    with gateway.client() as client:
        client.headers["X-KULMI-PUBLIC-API-KEY"] = gateway.merchant.public_key
        statuses = [
            client.post("/payment/get_amount_estimate/", json={"amount": 100}).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


def test_no_limit_by_default(gateway):
    assert {r.status_code for r in burst(gateway, gateway.merchant.secret_key, 30)} == {200}


def test_a_bad_limit_is_refused_at_start():
    with pytest.raises(ValueError):
        Settings(rate_limit="lots")


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not redis_up(), reason="no Redis at 127.0.0.1:6379")
def test_nodes_share_limits_through_redis(start_gateway):
    # Two API nodes on one database and one Redis: the limit is for the key, not the node.
    # Keys are new in every test, so runs never share a window.
    settings = {"rate_limit": "4/minute", "redis_url": "redis://127.0.0.1:6379"}
    first = start_gateway(**settings)
    second = start_gateway(**settings)
    key = first.merchant.secret_key
    statuses = [r.status_code for r in burst(first, key, 2)]
    statuses += [r.status_code for r in burst(second, key, 3)]
    assert statuses == [200, 200, 200, 200, 429]


# STK prompts (issue 12 point 7): limited by default, per API key and per phone number.

VICTIM = "254712345678"


def push_status(gateway, phone, headers, path="/payment/mpesa-stk-push/"):
    body = {"phone_number": phone, "amount": 100}
    if path == "/payment/collection/":
        body["method"] = "M-PESA"
    with gateway.client(**headers) as client:
        return client.post(path, json=body)


def invoices_to(gateway, phone):
    async def count(session):
        return await session.scalar(
            select(func.count())
            .select_from(Invoice)
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(Customer.phone_number == phone)
        )

    return gateway.query(count)


def test_prompts_to_one_phone_are_limited_by_default_across_keys(gateway):
    assert Settings.model_fields["prompt_limit_per_phone"].default == "5/minute;20/hour"
    mine = {"Authorization": f"Bearer {gateway.merchant.secret_key}"}
    other_public = {"X-KULMI-PUBLIC-API-KEY": gateway.other.public_key}
    for _ in range(5):  # one after the other: M-Pesa refuses a prompt while one is open
        response = push_status(gateway, VICTIM, mine)
        assert response.status_code == 200, response.text
        gateway.wait_final(response.json()["invoice"]["invoice_id"])
    throttled = push_status(gateway, VICTIM, mine)
    # Another business's published key cannot add prompts to the same phone either.
    from_elsewhere = push_status(gateway, VICTIM, other_public, "/payment/collection/")
    for response in (throttled, from_elsewhere):
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert response.json() == {
            "detail": "Request was throttled. Too many payment prompts to this phone number. "
            f"Expected available in {response.headers['retry-after']} seconds."
        }
    # Other phones are not affected; M-Pesa saw five prompts to the phone, the gateway stored
    # five invoices for it.
    assert push_status(gateway, "254712345679", mine).status_code == 200
    assert len(gateway.sim.control("GET", "/transactions", params={"phone_number": VICTIM})) == 5
    assert invoices_to(gateway, VICTIM) == 5


def test_prompts_per_key_are_limited(start_gateway):
    assert Settings.model_fields["prompt_limit_per_key"].default == "120/minute"
    gateway = start_gateway(prompt_limit_per_key="3/minute")
    public = {"X-KULMI-PUBLIC-API-KEY": gateway.merchant.public_key}
    phones = [f"25471100000{n}" for n in range(5)]
    statuses = [
        push_status(gateway, phone, public, "/payment/collection/").status_code
        for phone in phones[:3]
    ]
    assert statuses == [200] * 3
    throttled = push_status(gateway, phones[3], public, "/payment/collection/")
    assert throttled.status_code == 429
    assert "Too many payment prompts with this API key." in throttled.json()["detail"]
    assert invoices_to(gateway, phones[3]) == 0
    # The secret key is a key of its own; the other business is not affected.
    secret = {"Authorization": f"Bearer {gateway.merchant.secret_key}"}
    assert push_status(gateway, phones[4], secret).status_code == 200
    other = {"Authorization": f"Bearer {gateway.other.secret_key}"}
    assert push_status(gateway, phones[3], other).status_code == 200


def test_prompt_limits_can_be_turned_off(start_gateway):
    gateway = start_gateway(prompt_limit_per_key="", prompt_limit_per_phone="")
    secret = {"Authorization": f"Bearer {gateway.merchant.secret_key}"}
    assert {push_status(gateway, VICTIM, secret).status_code for _ in range(8)} == {200}


def test_bad_prompt_limits_are_refused_at_start():
    with pytest.raises(ValueError):
        Settings(prompt_limit_per_phone="often")
