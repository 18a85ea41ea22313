"""Rate limits per API key (SPEC section 7): 429 with Retry-After; shared through Redis."""

import socket

import pytest

from pesagate.config import Settings


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
