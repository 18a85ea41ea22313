"""Hosted checkout over the API (issue 14): sessions with the public key, paying inside a
session with its signature, signed status, status with the public key alone (no personal
data), payment links and their usage limit under concurrent payers. Real gateway, simulator
and kulmipay SDK, on SQLite and PostgreSQL."""

import threading
import time
import uuid

import httpx
import jwt
import pytest

from pesagate.checkout import signatures
from pesagate.config import Settings
from tests.fixtures.servers import SHARED_SSL_CONTEXT, wait_until

CALLBACKS_FIRST = {"reconcile_grace_s": 60.0}
PUBLIC_HEADERS = ("X-KULMI-PUBLIC-API-KEY", "X-IntaSend-Public-API-Key", "INTASEND_PUBLIC_API_KEY")


def signing_key(gateway):
    return Settings(database_url=gateway.db_url).checkout_signing_key


def create_session(gateway, how="body", merchant=None, **fields):
    merchant = merchant or gateway.merchant
    body = {"amount": 1500, "currency": "KES", **fields}
    headers = {}
    if how == "body":
        body["public_key"] = merchant.public_key
    else:
        headers[how] = merchant.public_key
    with gateway.client(**{}) as client:
        response = client.post("/checkout/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def pay_in_session(gateway, session, phone, key=None, **fields):
    body = {
        "method": "M-PESA",
        "phone_number": phone,
        "checkout_id": session["id"],
        "signature": session["signature"],
        **fields,
    }
    headers = {"Idempotency-Key": key} if key else {}
    with gateway.client() as client:
        return client.post("/payment/collection/", json=body, headers=headers)


def signed_status(gateway, invoice_id, checkout_id, signature):
    with gateway.client() as client:
        return client.post(
            "/payment/status/",
            json={"invoice_id": invoice_id, "checkout_id": checkout_id, "signature": signature},
        )


@pytest.mark.parametrize("how", ["body", *PUBLIC_HEADERS])
def test_a_session_with_the_public_key_given_each_way(gateway, how):
    session = create_session(gateway, how, api_ref="order-9", redirect_url="https://shop.ke/done")
    assert str(uuid.UUID(session["id"])) == session["id"]
    assert session["url"] == f"{gateway.url}/checkout/{session['id']}/express/"
    assert session["amount"] == "1500.00"
    assert session["paid"] is False
    assert session["api_ref"] == "order-9"
    assert session["redirect_url"] == "https://shop.ke/done"
    assert jwt.get_unverified_header(session["signature"])["alg"] == "HS256"
    claims = jwt.decode(
        session["signature"], signing_key(gateway), algorithms=["HS256"], audience=session["id"]
    )
    assert claims["aud"] == [session["id"]]
    assert claims["scope"] == "express-checkout"
    assert claims["exp"] - claims["iat"] == 3600


def test_sessions_refuse_the_secret_key_and_bad_fields(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        refused = client.post("/checkout/", json={"amount": 100})
        bad = client.post(
            "/checkout/",
            headers={"X-KULMI-PUBLIC-API-KEY": gateway.merchant.public_key},
            json={"amount": 100},
        )
    assert refused.status_code == 403 and "public key" in refused.json()["detail"]
    assert bad.status_code == 403  # a secret key beside it still authenticates, and is refused
    with gateway.client() as client:
        invalid = client.post(
            "/checkout/",
            json={
                "public_key": gateway.merchant.public_key,
                "amount": 5,
                "currency": "USD",
                "api_ref": "x" * 71,
                "redirect_url": "javascript:alert(1)",
                "host": "https://shop.ke/path",
                "phone_number": "0799",
            },
        )
        nothing = client.post("/checkout/", json={"amount": 100})
    assert invalid.status_code == 400
    assert set(invalid.json()) == {
        "amount",
        "currency",
        "api_ref",
        "redirect_url",
        "host",
        "phone_number",
    }
    assert invalid.json()["api_ref"] == ["Ensure this field has no more than 70 characters."]
    assert nothing.status_code == 401


def test_unique_api_ref_returns_the_same_session_and_the_old_path_works(gateway):
    first = create_session(gateway, api_ref="cart-77", unique_api_ref=True)
    again = create_session(gateway, api_ref="cart-77", unique_api_ref=True)
    fresh = create_session(gateway, api_ref="cart-77")
    assert again["id"] == first["id"]
    assert fresh["id"] != first["id"]
    with gateway.client() as client:
        old = client.post(
            "/payment/collection/checkout",
            json={"public_key": gateway.merchant.public_key, "amount": 10},
        )
    assert old.status_code == 201 and old.json()["amount"] == "10.00"


def test_sdk_checkout_pay_in_session_and_signed_status(start_gateway):
    gateway = start_gateway(**CALLBACKS_FIRST)
    phone = "254712345601"
    session = gateway.sdk(public_only=True).collect.checkout(
        amount=1500, api_ref="order-1", email="wanjiku@example.com", first_name="Wanjiku"
    )
    assert session["paid"] is False and session["amount"] == "1500.00"
    with gateway.holding(phone):
        paid = pay_in_session(gateway, session, "0712345601", amount=1)  # amount is the session's
    assert paid.status_code == 201, paid.text
    assert set(paid.json()) == {"invoice", "signature"}
    invoice = paid.json()["invoice"]
    assert invoice["value"] == "1500.00" and invoice["api_ref"] == "order-1"
    # The SDK's status with checkout_id + signature (it sends no secret key).
    sdk = gateway.sdk(public_only=True)
    final = wait_until(
        lambda: (
            (
                s := sdk.collect.status(
                    invoice_id=invoice["invoice_id"],
                    checkout_id=session["id"],
                    signature=paid.json()["signature"],
                )
            )["invoice"]["state"]
            == "COMPLETE"
            and s
        ),
        what="the session's invoice to complete",
    )
    assert final["invoice"]["account"] == phone  # a signature shows the payer's details
    assert final["meta"]["customer"]["email"] == "wanjiku@example.com"
    # The session is paid, once: another push is refused and nothing reaches M-Pesa.
    again = pay_in_session(gateway, session, "0712345602")
    assert again.status_code == 400
    assert again.json() == {"detail": "This checkout session is already paid."}
    truth = gateway.sim.control("GET", "/transactions")
    assert [t["phone_number"] for t in truth] == [phone]
    with gateway.client(gateway.merchant.secret_key) as client:
        details = client.post("/checkout/details/", json={"checkout_id": session["id"]}).json()
        wallet = client.get(f"/wallets/{gateway.merchant.wallet_id}/").json()
    assert details["paid"] is True and details["invoice"]["invoice_id"] == invoice["invoice_id"]
    assert wallet["available_balance"] == "1467.00"  # credited as any STK push


def test_signatures_open_only_their_own_session(gateway):
    mine = create_session(gateway, amount=100)
    other = create_session(gateway, amount=100)
    with gateway.holding("254712345603"):
        paid = pay_in_session(gateway, mine, "254712345603")
    invoice_id = paid.json()["invoice"]["invoice_id"]
    assert signed_status(gateway, invoice_id, mine["id"], mine["signature"]).status_code == 200
    foreign = signed_status(gateway, invoice_id, other["id"], other["signature"])
    assert foreign.status_code == 403
    crossed = signed_status(gateway, invoice_id, mine["id"], other["signature"])
    assert crossed.status_code == 401
    key = signing_key(gateway)
    old = signatures.sign(key, mine["id"], "BIZ", now=time.time() - 3601)
    expired = signed_status(gateway, invoice_id, mine["id"], old)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    forged = signatures.sign("another-key-of-at-least-32-characters!!", mine["id"], "BIZ")
    assert signed_status(gateway, invoice_id, mine["id"], forged).status_code == 401
    with gateway.client() as client:
        public_details = client.post(
            "/checkout/details/",
            json={"public_key": gateway.merchant.public_key, "checkout_id": mine["id"]},
        )
        signed_details = client.post(
            "/checkout/details",
            json={
                "public_key": gateway.merchant.public_key,
                "checkout_id": mine["id"],
                "signature": mine["signature"],
            },
        )
        other_merchant = client.post(
            "/checkout/details/",
            json={
                "public_key": gateway.other.public_key,
                "checkout_id": mine["id"],
                "signature": mine["signature"],
            },
        )
    assert public_details.status_code == 401
    assert signed_details.status_code == 200 and signed_details.json()["id"] == mine["id"]
    assert other_merchant.status_code == 404


def test_status_with_the_public_key_alone_hides_personal_data(gateway):
    session = gateway.push("254712345604", email="amina@example.com", first_name="Amina")
    invoice_id = session["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)
    public = gateway.sdk(public_only=True).collect.status(invoice_id=invoice_id)
    assert public["invoice"]["state"] == "COMPLETE"
    assert public["invoice"]["account"] == "25471***5604"
    customer = public["meta"]["customer"]
    assert customer["phone_number"] == "25471***5604"
    assert customer["email"] is None and customer["first_name"] is None
    with gateway.client(gateway.merchant.secret_key) as client:
        full = client.post("/payment/status/", json={"invoice_id": invoice_id}).json()
    assert full["invoice"]["account"] == "254712345604"
    assert full["meta"]["customer"]["email"] == "amina@example.com"


def test_one_attempt_at_a_time_and_an_open_amount(gateway):
    session = create_session(gateway, amount=0)
    assert session["amount"] == "0.00"
    missing = pay_in_session(gateway, session, "254712345605")
    assert missing.status_code == 400 and list(missing.json()) == ["amount"]
    with gateway.holding("254712345605"):
        first = pay_in_session(gateway, session, "254712345605", amount="250")
        assert first.status_code == 201 and first.json()["invoice"]["value"] == "250.00"
        second = pay_in_session(gateway, session, "254712345606", amount="250")
        assert second.status_code == 400 and "still waiting" in second.json()["detail"]
    gateway.wait_final(first.json()["invoice"]["invoice_id"])


def test_an_idempotency_key_pushes_once(gateway):
    session = create_session(gateway, amount=100)
    with gateway.holding("254712345607"):
        first = pay_in_session(gateway, session, "254712345607", key="attempt-1")
        replay = pay_in_session(gateway, session, "254712345607", key="attempt-1")
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["invoice"]["invoice_id"] == first.json()["invoice"]["invoice_id"]
    truth = gateway.sim.control("GET", "/transactions", params={"phone_number": "254712345607"})
    assert len(truth) == 1


# ---------------------------------------------------------------- payment links

LINK_BODY = {  # as intasend-python's PaymentLinks.create sends it
    "title": "Mama Mboga greens",
    "currency": "KES",
    "amount": 300,
    "mobile_tarrif": "BUSINESS-PAYS",
    "card_tarrif": "BUSINESS-PAYS",
    "is_active": True,
}


def create_link(gateway, **fields):
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.post("/paymentlinks/", json={**LINK_BODY, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def open_link(gateway, link):
    """A visit to the link's page: the checkout session it opened (its id and signature)."""
    with httpx.Client(trust_env=False, verify=SHARED_SSL_CONTEXT) as browser:
        visit = browser.get(link["url"])
        if visit.status_code != 303:
            return visit
        checkout_id = visit.headers["location"].rstrip("/").split("/")[-2]
    with gateway.client(gateway.merchant.secret_key) as client:
        return client.post("/checkout/details/", json={"checkout_id": checkout_id}).json()


def test_payment_link_crud(gateway):
    link = create_link(gateway, usage_limit=3, redirect_url="https://shop.ke/thanks")
    assert str(uuid.UUID(link["id"])) == link["id"]
    assert link["url"] == f"{gateway.url}/pay/{link['id']}/"
    assert link["qrcode_file"] == f"{gateway.url}/pay/{link['id']}/qr.svg"
    assert (link["amount"], link["usage_limit"], link["is_active"]) == (300, 3, True)
    with gateway.client(gateway.merchant.secret_key) as client:
        assert client.get(f"/paymentlinks/{link['id']}").json() == link  # no trailing slash
        assert client.get(f"/paymentlinks/{link['id']}/").json() == link
        listing = client.get("/paymentlinks/").json()
        assert set(listing) == {"count", "next", "previous", "results"}
        assert listing["count"] == 1 and listing["results"][0]["id"] == link["id"]
        unchanged = client.put(f"/paymentlinks/{link['id']}")  # intasend-rs sends no body
        assert unchanged.status_code == 200 and unchanged.json()["title"] == link["title"]
        renamed = client.patch(f"/paymentlinks/{link['id']}/", json={"title": "Sukuma"}).json()
        assert renamed["title"] == "Sukuma" and renamed["amount"] == 300
        off = client.put(f"/paymentlinks/{link['id']}/", json={"is_active": False}).json()
        assert off["is_active"] is False
        alias = client.post(
            "/paymentlinks/",
            json={
                "title": "php",
                "amount": 0,
                "mobile_tarrif": "CUSTOMER_PAYS",
                "is_active": "true",
            },
        )
        assert alias.status_code == 201 and alias.json()["mobile_tarrif"] == "CUSTOMER-PAYS"
        bad = client.post("/paymentlinks/", json={"amount": 5, "usage_limit": -1})
        assert bad.status_code == 400 and set(bad.json()) == {"title", "amount", "usage_limit"}
    with gateway.client(gateway.other.secret_key) as client:
        assert client.get(f"/paymentlinks/{link['id']}/").status_code == 404
    inactive = open_link(gateway, off)
    assert inactive.status_code == 410 and "inactive" in inactive.text
    with httpx.Client(trust_env=False, verify=SHARED_SSL_CONTEXT) as browser:
        qr = browser.get(link["qrcode_file"])
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml"
    assert qr.text.lstrip().startswith(("<?xml", "<svg"))


def test_a_link_payment_carries_the_link_in_status(start_gateway):
    gateway = start_gateway(**CALLBACKS_FIRST)
    link = create_link(gateway)
    session = open_link(gateway, link)
    assert session["payment_link"] == link["id"] and session["amount"] == "300.00"
    with gateway.holding("254712345608"):
        paid = pay_in_session(gateway, session, "0712345608")
    invoice_id = paid.json()["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)
    with gateway.client(gateway.merchant.secret_key) as client:
        status = client.post("/payment/status/", json={"invoice_id": invoice_id}).json()
    assert status["meta"]["payment_link"]["id"] == link["id"]
    assert status["meta"]["payment_link"]["usage_limit"] == 0
    assert status["meta"]["payment_link"]["url"] == link["url"]


def test_a_link_with_usage_limit_one_is_paid_once_by_concurrent_payers(start_gateway):
    gateway = start_gateway(**CALLBACKS_FIRST)
    link = create_link(gateway, usage_limit=1)
    sessions = [open_link(gateway, link) for _ in range(2)]
    phones = ["254712345611", "254712345612"]
    answers: list[httpx.Response] = []
    start = threading.Barrier(2)

    def payer(session, phone):
        start.wait()
        answers.append(pay_in_session(gateway, session, phone))

    with gateway.holding(phones[0]), gateway.holding(phones[1]):
        threads = [
            threading.Thread(target=payer, args=pair) for pair in zip(sessions, phones, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 400], [a.text for a in answers]
    [won] = [a for a in answers if a.status_code == 201]
    [lost] = [a for a in answers if a.status_code == 400]
    assert "paying through this payment link" in lost.json()["detail"]
    assert gateway.wait_final(won.json()["invoice"]["invoice_id"])["state"] == "COMPLETE"
    truth = gateway.sim.control("GET", "/transactions")
    assert len(truth) == 1  # one prompt reached M-Pesa
    used_up = open_link(gateway, link)
    assert used_up.status_code == 410 and "no longer available" in used_up.text
    for session in sessions:  # neither session can push again: the link is used up or paid
        assert pay_in_session(gateway, session, "254712345613").status_code == 400


def test_the_express_page_renders_without_third_party_assets(gateway):
    session = create_session(gateway, amount=1500, host="https://shop.ke")
    with httpx.Client(trust_env=False, verify=SHARED_SSL_CONTEXT) as browser:
        page = browser.get(session["url"])
        missing = browser.get(f"{gateway.url}/checkout/{uuid.uuid4()}/express/")
        script = browser.get(f"{gateway.url}/static/pesagate-inline.js")
    assert page.status_code == 200 and "Mama Mboga Store" in page.text
    assert "KES 1,500.00" in page.text
    assert "frame-ancestors https://shop.ke" in page.headers["content-security-policy"]
    assert "http" not in page.text.split("<body>")[0].replace(gateway.url, "")  # no CDN
    assert missing.status_code == 404
    assert script.status_code == 200 and "intasend-status-update-cdrtl" in script.text


def test_live_mode_refuses_to_start_without_a_checkout_secret():
    live = {
        "env": "live",
        "public_url": "https://pay.example.com",
        "mpesa_consumer_key": "live-key-123",
        "mpesa_consumer_secret": "live-secret-456",
        "mpesa_shortcode": "600123",
        "mpesa_passkey": "not-the-sandbox-passkey",
    }
    with pytest.raises(ValueError, match="PESAGATE_CHECKOUT_SECRET"):
        Settings(**live)
    with pytest.raises(ValueError, match="PESAGATE_CHECKOUT_SECRET"):
        Settings(**live, checkout_secret="short")
    secret = "s" * 40
    assert Settings(**live, checkout_secret=secret).checkout_signing_key == secret


def test_intasend_python_request_shapes(start_gateway):
    """A raw replay of intasend-python's calls: its public key in the underscored header,
    `checkout/` without auth, then `status` with the public key in body and header."""
    gateway = start_gateway(**CALLBACKS_FIRST)
    headers = {"INTASEND_PUBLIC_API_KEY": gateway.merchant.public_key}
    with gateway.client(**{}) as client:
        created = client.post(
            "/checkout/",
            headers=headers,
            json={
                "public_key": gateway.merchant.public_key,
                "amount": 100,
                "currency": "KES",
                "api_ref": "API Request",
                "version": "3.0.0",
                "card_tarrif": "BUSINESS-PAYS",
                "method": "M-PESA",
            },
        )
        assert created.status_code == 201, created.text
        session = created.json()
        assert session["version"] == "3.0.0" and session["method"] == "M-PESA"
        with gateway.holding("254712345609"):
            paid = pay_in_session(gateway, session, "+254712345609")
        invoice_id = paid.json()["invoice"]["invoice_id"]
        gateway.wait_final(invoice_id)
        status = client.post(
            "/payment/status/",
            headers=headers,
            json={"invoice_id": invoice_id, "public_key": gateway.merchant.public_key},
        )
    assert status.status_code == 200
    assert status.json()["invoice"]["state"] == "COMPLETE"
    assert status.json()["invoice"]["account"] == "25471***5609"


def test_the_sdk_pays_inside_a_session_and_reconciliation_settles_it(gateway):
    """kulmipay's `collect.mpesa(..., checkout_id=, signature=)`; the callback never comes
    (254700009001), so the STK query completes the invoice: these invoices live the same life
    as any push."""
    session = create_session(gateway, amount=200)
    sdk = gateway.sdk(public_only=True)
    paid = sdk.collect.mpesa(
        phone_number="254700009001",
        amount=200,
        checkout_id=session["id"],
        signature=session["signature"],
    )
    invoice_id = paid["invoice"]["invoice_id"]
    assert gateway.wait_final(invoice_id)["state"] == "COMPLETE"
    assert gateway.callbacks(invoice_id) == []  # settled by reconciliation alone
    with gateway.client(gateway.merchant.secret_key) as client:
        details = client.post("/checkout/details/", json={"checkout_id": session["id"]}).json()
    assert details["paid"] is True
