"""The security pass: another merchant's ids are unknown on every route, and secrets never
appear in logs or list responses."""

import logging
import socket
import time

import httpx

from pesagate.app import create_app
from pesagate.config import Settings
from tests.fixtures.servers import SHARED_SSL_CONTEXT, wait_until


def objects_of(gateway, receiver):
    """One of every object the merchant can own."""
    with gateway.client(gateway.merchant.secret_key) as client:
        hook = client.post(
            "/webhooks/", json={"endpoint": receiver.url + "/h", "challenge": "sekret-challenge"}
        ).json()
        invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
        gateway.wait_final(invoice_id)
        wallet = gateway.sdk().wallets.create(currency="KES", label="ops")
        events = client.get("/webhooks/events/").json()["results"]
    return invoice_id, wallet["wallet_id"], hook, events[0]["id"]


def test_every_route_with_an_id_answers_404_to_another_merchant(gateway, callback_receiver):
    invoice_id, wallet_id, hook, event_id = objects_of(gateway, callback_receiver)
    paid = wait_until(lambda: (inv := gateway.status(invoice_id))["mpesa_reference"] and inv)
    refund = {"invoice_id": invoice_id, "amount": paid["value"], "reason": "Other"}
    with gateway.client(gateway.merchant.secret_key) as client:
        link_id = client.post("/paymentlinks/", json={"title": "t", "amount": 100}).json()["id"]
        chargeback_id = client.post("/chargebacks/", json=refund).json()["chargeback_id"]
    checkout = httpx.post(
        f"{gateway.api}/checkout/",
        json={"public_key": gateway.merchant.public_key, "amount": 100},
        trust_env=False,
        verify=SHARED_SSL_CONTEXT,
    ).json()
    calls = {
        ("GET", "/api/v1/invoices/{invoice_id}/"): f"/invoices/{invoice_id}/",
        ("GET", "/api/v1/wallets/{wallet_id}/"): f"/wallets/{wallet_id}/",
        ("GET", "/api/v1/wallets/{wallet_id}/transactions/"): f"/wallets/{wallet_id}/transactions/",
        (
            "POST",
            "/api/v1/wallets/{wallet_id}/intra_transfer/",
        ): f"/wallets/{wallet_id}/intra_transfer/",
        ("GET", "/api/v1/webhooks/{webhook_id}/"): f"/webhooks/{hook['id']}/",
        ("PATCH", "/api/v1/webhooks/{webhook_id}/"): f"/webhooks/{hook['id']}/",
        ("DELETE", "/api/v1/webhooks/{webhook_id}/"): f"/webhooks/{hook['id']}/",
        (
            "POST",
            "/api/v1/webhooks/events/{event_id}/replay/",
        ): f"/webhooks/events/{event_id}/replay/",
        ("GET", "/api/v1/paymentlinks/{link_id}/"): f"/paymentlinks/{link_id}/",
        ("PUT", "/api/v1/paymentlinks/{link_id}/"): f"/paymentlinks/{link_id}/",
        ("PATCH", "/api/v1/paymentlinks/{link_id}/"): f"/paymentlinks/{link_id}/",
        (
            "POST",
            "/api/v1/paymentlinks/{link_id}/deactivate/",
        ): f"/paymentlinks/{link_id}/deactivate/",
        ("GET", "/api/v1/chargebacks/{chargeback_id}/"): f"/chargebacks/{chargeback_id}/",
    }
    bodies = {"intra_transfer": {"wallet_id": wallet_id, "amount": 1, "narrative": "x"}}
    with gateway.client(gateway.other.secret_key) as other:
        for (method, _), path in calls.items():
            body = (
                bodies["intra_transfer"]
                if "intra_transfer" in path
                else ({} if method in ("POST", "PATCH", "PUT") else None)
            )
            response = other.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
        # Ids inside bodies and queries are as unknown.
        assert other.post("/payment/status/", json={"invoice_id": invoice_id}).status_code == 404
        assert other.get("/transactions/", params={"wallet_id": wallet_id}).status_code == 404
        refused = other.post("/chargebacks/", json=refund)
        assert refused.status_code == 400 and list(refused.json()) == ["invoice_id"]
        assert other.get("/chargebacks/").json()["count"] == 0
        details = other.post("/checkout/details/", json={"checkout_id": checkout["id"]})
        assert details.status_code == 404
        push = other.post(
            "/payment/mpesa-stk-push/",
            json={"phone_number": "254712345678", "amount": 100, "wallet_id": wallet_id},
        )
        assert push.status_code == 400 and list(push.json()) == ["wallet_id"]
        assert other.get("/invoices/").json()["count"] == 0
        assert other.get("/webhooks/events/").json()["count"] == 0
    # Every API route that takes an id in its path is covered above.
    app = create_app(Settings(database_url=gateway.db_url), run_worker=False)
    with_ids = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if "{" in path and path.startswith("/api/v1")
        for method in operations
    }
    assert with_ids == set(calls)


def test_secrets_stay_out_of_logs_and_lists(gateway, callback_receiver, caplog):
    caplog.set_level(logging.DEBUG)
    _, _, hook, _ = objects_of(gateway, callback_receiver)
    callback_receiver.wait_for("/h")
    logged = caplog.text + "".join(str(record.msg) for record in caplog.records)
    for secret in (
        gateway.merchant.secret_key,
        hook["signing_secret"],
        "sekret-challenge",
        "sim-consumer-secret",
    ):
        assert secret not in logged
    with gateway.client(gateway.merchant.secret_key) as client:
        listings = client.get("/webhooks/").text + client.get(f"/webhooks/{hook['id']}/").text
    assert hook["signing_secret"] not in listings and "sekret-challenge" not in listings
    # The event log shows what was sent (the payload carries the challenge, by design) but
    # never the signing secret.
    with gateway.client(gateway.merchant.secret_key) as client:
        assert hook["signing_secret"] not in client.get("/webhooks/events/").text


def test_oversized_bodies_are_413_everywhere(gateway):
    big = b'{"x": "' + b"a" * (70 * 1024) + b'"}'
    for path in (
        "/api/v1/payment/mpesa-stk-push/",
        "/api/v1/payment/status/",
        "/callbacks/stk/anything",
    ):
        response = httpx.post(
            gateway.url + path,
            content=big,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {gateway.merchant.secret_key}",
            },
            verify=SHARED_SSL_CONTEXT,
        )
        assert response.status_code == 413, path


def test_a_client_that_hangs_up_mid_body_costs_nothing(gateway, caplog):
    """Clients that close the connection before sending their whole body (load generators at
    the end of a run do it by the dozen) must not produce error logs or stall the server: each
    used to log a traceback whose rendering blocked the event loop for seconds."""
    caplog.set_level(logging.INFO)
    host, port = gateway.url.removeprefix("http://").split(":")
    for _ in range(20):
        with socket.create_connection((host, int(port))) as connection:
            connection.sendall(
                b"POST /api/v1/payment/status/ HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + gateway.merchant.secret_key.encode() + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
                b'{"invoice_id": "'
            )
    started = time.monotonic()
    with gateway.client(gateway.merchant.secret_key) as client:
        assert client.get("/invoices/").status_code == 200
    assert time.monotonic() - started < 5
    wait_until(lambda: caplog.text.count("client disconnected") == 20)
    assert "unhandled error" not in caplog.text
    assert gateway.merchant.secret_key not in caplog.text
