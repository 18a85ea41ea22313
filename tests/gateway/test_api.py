"""The rest of the API surface: tenancy, environments, collect, estimates, invoice listing,
and request hygiene (SPEC sections 1, 3, 7)."""

import asyncio
import logging

import httpx
import pytest

from pesagate.app import create_app
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.models import Environment
from pesagate.services import create_merchant
from tests.fixtures.servers import SHARED_SSL_CONTEXT, UvicornThread


def test_another_merchants_invoice_is_404_everywhere(gateway):
    invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
    with gateway.client(gateway.other.secret_key) as client:
        status = client.post("/payment/status/", json={"invoice_id": invoice_id})
        detail = client.get(f"/invoices/{invoice_id}/")
        listing = client.get("/invoices/")
    assert status.status_code == 404 and detail.status_code == 404
    assert status.json() == {"detail": "No invoice matches the given query."}
    assert listing.json()["count"] == 0
    with gateway.client(X_KULMI_PUBLIC_API_KEY=gateway.other.public_key) as client:
        client.headers["X-KULMI-PUBLIC-API-KEY"] = gateway.other.public_key
        assert client.post("/payment/status/", json={"invoice_id": invoice_id}).status_code == 404


def test_another_merchants_wallet_is_refused(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.post(
            "/payment/mpesa-stk-push/",
            json={
                "phone_number": "254712345678",
                "amount": 100,
                "wallet_id": gateway.other.wallet_id,
            },
        )
    assert response.status_code == 400
    assert list(response.json()) == ["wallet_id"]


def test_own_wallet_id_is_accepted(gateway):
    session = gateway.push("254712345678", wallet_id=gateway.merchant.wallet_id)
    assert session["invoice"]["wallet_id"] == gateway.merchant.wallet_id


def live_server(db_url):
    async def merchant():
        db = Database(db_url)
        try:
            async with db.transaction() as session:
                return await create_merchant(session, "Live Shop", Environment.LIVE)
        finally:
            await db.dispose()

    new = asyncio.run(merchant())
    settings = Settings(
        env="live",
        database_url=db_url,
        public_url="https://pay.example.com",
        mpesa_base_url="http://127.0.0.1:9",
        mpesa_consumer_key="live-key-123",
        mpesa_consumer_secret="live-secret-456",
        mpesa_shortcode="600123",
        mpesa_passkey="not-the-sandbox-passkey",
        checkout_secret="a-live-checkout-signing-secret-of-40-chars",
    )
    return new, UvicornThread(create_app(settings, run_worker=False))


def test_keys_are_bound_to_their_environment(gateway):
    new, server = live_server(gateway.db_url)
    with server:
        api = f"{server.url}/api/v1"
        test_key = httpx.post(
            f"{api}/payment/status/",
            json={"invoice_id": "X"},
            headers={"Authorization": f"Bearer {gateway.merchant.secret_key}"},
            verify=SHARED_SSL_CONTEXT,
        )
        assert test_key.status_code == 401
        assert test_key.json() == {"detail": "Invalid token for live environment"}
        live_key = httpx.post(
            f"{api}/payment/status/",
            json={"invoice_id": "X"},
            headers={"Authorization": f"Bearer {new.keys.secret_key}"},
            verify=SHARED_SSL_CONTEXT,
        )
        assert live_key.status_code == 404  # authenticated; the invoice does not exist
        assert (
            httpx.get(f"{server.url}/sim/", verify=SHARED_SSL_CONTEXT).status_code == 404
        )  # no simulator in live
    with gateway.client(new.keys.secret_key) as client:
        response = client.get("/invoices/")
    assert response.json() == {"detail": "Invalid token for sandbox environment"}


def test_revoked_keys_are_refused(gateway):
    async def rotate():
        from pesagate.merchants.service import find_business, rotate_keys

        db = Database(gateway.db_url)
        try:
            async with db.transaction() as session:
                business = await find_business(session, gateway.other.business_id)
                return await rotate_keys(session, business, Environment.SANDBOX)
        finally:
            await db.dispose()

    pair = asyncio.run(rotate())
    with gateway.client(gateway.other.secret_key) as client:
        assert client.get("/invoices/").json() == {"detail": "Invalid api token"}
    with gateway.client(pair.secret_key) as client:
        assert client.get("/invoices/").status_code == 200


def test_collect_with_the_public_key(gateway):
    session = gateway.sdk(public_only=True).collect.mpesa(
        phone_number="254712345678", amount=250, api_ref="web-order"
    )
    assert session["invoice"]["value"] == "250.00"
    assert session["invoice"]["api_ref"] == "web-order"
    assert gateway.wait_final(session["invoice"]["invoice_id"])["state"] == "COMPLETE"


def test_collect_refuses_other_methods(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.post(
            "/payment/collection/",
            json={"method": "PESALINK", "amount": 100, "phone_number": "254712345678"},
        )
        older_path = client.post(
            "/collect", json={"method": "M-PESA", "amount": 100, "phone_number": "254712345678"}
        )
    assert response.status_code == 400 and list(response.json()) == ["method"]
    assert older_path.status_code == 200


def test_amount_estimate(gateway):
    quote = gateway.sdk().collect.get_quote(amount=1500, method="M-PESA", tarrif="CUSTOMER-PAYS")
    assert quote == {
        "amount": "1500.00",
        "charges": "33.00",
        "value": "1533.00",
        "net_amount": "1500.00",
        "tarrif": "CUSTOMER-PAYS",
    }
    with gateway.client(X_KULMI_PUBLIC_API_KEY=gateway.merchant.public_key) as client:
        client.headers["X-KULMI-PUBLIC-API-KEY"] = gateway.merchant.public_key
        response = client.post("/payment/get_amount_estimate", json={"amount": "1499.01"})
    assert response.json()["value"] == "1500.00" and response.json()["charges"] == "33.00"


def test_older_paths_and_missing_trailing_slashes(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        session = client.post(
            "/payment/collection/stk-push", json={"phone_number": "254712345678", "amount": 100}
        ).json()
        invoice_id = session["invoice"]["invoice_id"]
        assert (
            client.post("/payment/collection/status", json={"invoice_id": invoice_id}).status_code
            == 200
        )
        assert client.get(f"/invoices/{invoice_id}").json()["invoice_id"] == invoice_id


def test_page_sizes_over_the_maximum_are_refused_with_the_true_range(gateway):
    gateway.push("254712345600")
    with gateway.client(gateway.merchant.secret_key) as client:
        for path in ("/invoices/", "/wallets/", "/webhooks/", "/webhooks/events/"):
            too_big = client.get(path, params={"page_size": 501})
            assert too_big.status_code == 400, path
            assert too_big.json() == {"page_size": ["Enter a whole number from 1 to 500."]}
            assert client.get(path, params={"page_size": 500}).status_code == 200, path
        page = client.get("/invoices/", params={"page_size": 500}).json()
        assert page["count"] == len(page["results"]) == 1
        assert client.get("/invoices/", params={"page": 0}).json() == {
            "page": ["Enter a whole number from 1 to 1000000."]
        }


def test_invoice_list_filters_and_pages(gateway):
    ids = [
        gateway.push(f"25471234560{n}", api_ref=f"ref-{n % 2}")["invoice"]["invoice_id"]
        for n in range(5)
    ]
    with gateway.client(gateway.merchant.secret_key) as client:
        page = client.get("/invoices/", params={"page_size": 2}).json()
        assert page["count"] == 5
        assert [inv["invoice_id"] for inv in page["results"]] == ids[::-1][:2]  # newest first
        assert page["previous"] is None and "page=2" in page["next"]
        last = client.get(page["next"]).json()
        assert last["results"][0]["invoice_id"] == ids[2]
        assert client.get("/invoices/", params={"page": 9}).status_code == 404
        refs = client.get("/invoices/", params={"api_ref": "ref-1"}).json()
        assert {inv["invoice_id"] for inv in refs["results"]} == {ids[1], ids[3]}
        bad = client.get("/invoices/", params={"state": "PAID", "created_after": "yesterday"})
        assert bad.status_code == 400 and set(bad.json()) == {"state", "created_after"}
        future = client.get("/invoices/", params={"created_after": "2999-01-01T00:00:00Z"}).json()
        assert future["count"] == 0


def test_request_ids(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        given = client.get("/invoices/", headers={"X-Request-ID": "abc-123"})
        generated = client.get("/invoices/")
        error = client.get("/invoices/NOPE/")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert error.status_code == 404 and error.headers["x-request-id"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"phone_number=254712345678", "application/x-www-form-urlencoded", 415),
        (b"x" * (65 * 1024), "application/json", 413),
    ],
)
def test_malformed_bodies_are_4xx_and_store_nothing(gateway, content, content_type, status):
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.post(
            "/payment/mpesa-stk-push/", content=content, headers={"Content-Type": content_type}
        )
    assert response.status_code == status
    assert "detail" in response.json() or "non_field_errors" in response.json()
    with gateway.client(gateway.merchant.secret_key) as client:
        assert client.get("/invoices/").json()["count"] == 0


def test_unknown_routes_and_methods(gateway):
    assert httpx.get(f"{gateway.api}/nothing/", verify=SHARED_SSL_CONTEXT).json() == {
        "detail": "Not found."
    }
    response = httpx.get(f"{gateway.api}/payment/mpesa-stk-push/", verify=SHARED_SSL_CONTEXT)
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}


def test_health_readiness_metrics(gateway):
    gateway.push("254712345678")
    assert httpx.get(f"{gateway.url}/healthz", verify=SHARED_SSL_CONTEXT).json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/readyz", verify=SHARED_SSL_CONTEXT).json() == {"status": "ok"}
    metrics = httpx.get(f"{gateway.url}/metrics", verify=SHARED_SSL_CONTEXT).text
    assert (
        'pesagate_http_requests_total{method="POST",route="/api/v1/payment/mpesa-stk-push/",status="200"}'
        in metrics
    )
    assert 'pesagate_daraja_calls_total{call="stk_push",outcome="PushAccepted"}' in metrics
    assert 'pesagate_invoice_transitions_total{to_state="PROCESSING"}' in metrics


def test_openapi_describes_the_api(gateway):
    schema = httpx.get(f"{gateway.url}/openapi.json", verify=SHARED_SSL_CONTEXT).json()
    assert "/api/v1/payment/mpesa-stk-push/" in schema["paths"]
    body = schema["paths"]["/api/v1/payment/mpesa-stk-push/"]["post"]["requestBody"]
    assert "phone_number" in body["content"]["application/json"]["schema"]["properties"]
    assert httpx.get(f"{gateway.url}/docs", verify=SHARED_SSL_CONTEXT).status_code == 200


def test_logs_never_carry_secret_keys_or_full_phone_numbers(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    invoice_id = gateway.push("254712345699")["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)
    text = caplog.text + "".join(str(record.msg) for record in caplog.records)
    assert gateway.merchant.secret_key not in text
    assert "254712345699" not in text
    assert "25471***5699" in text
