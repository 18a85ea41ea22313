"""The official `kulmipay` SDK, unchanged, against a real pesagate server."""

import json

import pytest
from kulmipay.exceptions import KulmiPayBadRequest, KulmiPayNotAllowed, KulmiPayUnauthorized
from sqlalchemy import text


def test_sdk_stk_push_reaches_complete_with_a_receipt(start_gateway):
    gateway = start_gateway(reconcile_grace_s=60.0)  # the receipt comes by callback, not query
    with gateway.holding("254712345678"):
        session = gateway.sdk().collect.mpesa_stk_push(
            phone_number="254712345678", amount=1500, api_ref="order-1"
        )
    invoice = session["invoice"]
    assert invoice["state"] == "PROCESSING"
    assert invoice["provider"] == "M-PESA"
    assert session["customer"]["phone_number"] == "254712345678"
    assert session["customer"]["customer_id"].startswith("CUST_")
    final = gateway.wait_final(invoice["invoice_id"])
    assert final["state"] == "COMPLETE"
    assert final["mpesa_reference"]
    assert final["clearing_status"] == "AVAILABLE"
    truth = gateway.sim.control("GET", "/transactions", params={"phone_number": "254712345678"})
    assert truth[0]["receipt"] == final["mpesa_reference"]
    assert truth[0]["account_reference"] == invoice["invoice_id"]  # AccountReference = invoice_id
    assert truth[0]["transaction_desc"] == "Mama Mboga St"  # the short name, 13 characters
    assert truth[0]["amount"] == 1500


def test_sdk_status_with_the_public_key_only(gateway):
    invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)
    status = gateway.sdk(public_only=True).collect.status(invoice_id=invoice_id)
    assert status["invoice"]["invoice_id"] == invoice_id
    assert status["invoice"]["state"] == "COMPLETE"
    assert status["meta"]["invoice"]["invoice_id"] == invoice_id
    # The public key is published in web pages: it reads the state, not who paid (issue 14).
    assert status["meta"]["customer"]["phone_number"] == "25471***5678"
    assert status["invoice"]["account"] == "25471***5678"


@pytest.mark.parametrize(
    ("tariff", "amount", "value", "charges", "net"),
    [
        ("BUSINESS-PAYS", 1500, "1500.00", "33.00", "1467.00"),
        ("CUSTOMER-PAYS", 1500, "1533.00", "33.00", "1500.00"),
        ("BUSINESS-PAYS", "1499.01", "1500.00", "33.00", "1467.00"),
        ("CUSTOMER-PAYS", 999, "1021.00", "22.00", "999.00"),
        ("BUSINESS-PAYS", 99, "99.00", "2.18", "96.82"),
    ],
)
def test_tariffs_to_the_cent(gateway, tariff, amount, value, charges, net):
    session = gateway.sdk().collect.mpesa_stk_push(
        phone_number="254712345670", amount=amount, mobile_tarrif=tariff
    )
    invoice = session["invoice"]
    assert (invoice["value"], invoice["charges"], invoice["net_amount"]) == (value, charges, net)
    assert invoice["mobile_tarrif"] == tariff
    final = gateway.wait_final(invoice["invoice_id"])
    truth = gateway.sim.control("GET", "/transactions", params={"phone_number": "254712345670"})
    assert truth[0]["amount"] == int(float(value))  # the customer was prompted for the value
    assert final["state"] == "COMPLETE"


def test_sdk_validation_errors_report_every_bad_field(gateway):
    with pytest.raises(KulmiPayBadRequest) as raised:
        gateway.sdk().collect.mpesa_stk_push(
            phone_number="0799",
            amount=-5,
            api_ref="x" * 141,
            wallet_id="NOPE123",
            mobile_tarrif="FREE",
        )
    errors = json.loads(str(raised.value))
    assert set(errors) == {"phone_number", "amount", "api_ref", "wallet_id", "mobile_tarrif"}
    assert errors["amount"] == ["Ensure this value is greater than 0."]
    assert errors["api_ref"] == ["Ensure this field has no more than 140 characters."]
    assert gateway.query(lambda s: s.scalar(text("SELECT count(*) FROM invoices"))) == 0


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"amount": 100}, "phone_number", "This field is required."),
        ({"phone_number": "254712345678"}, "amount", "This field is required."),
        (
            {"phone_number": "254712345678", "amount": "ten"},
            "amount",
            "A valid number is required.",
        ),
        (
            {"phone_number": "254712345678", "amount": "NaN"},
            "amount",
            "A valid number is required.",
        ),
        (
            {"phone_number": "254712345678", "amount": 5},
            "amount",
            "Ensure this value is at least 10.",
        ),
        (
            {"phone_number": "254712345678", "amount": 150001},
            "amount",
            "Ensure this value is at most 150000.",
        ),
        ({"phone_number": "255712345678", "amount": 100}, "phone_number", None),
        (
            {"phone_number": "254712345678", "amount": 100, "email": "no-at"},
            "email",
            "Enter a valid email address.",
        ),
        ({"phone_number": True, "amount": 100}, "phone_number", "Not a valid string."),
    ],
)
def test_each_bad_field_is_a_400_on_that_field(gateway, body, field, message):
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.post("/payment/mpesa-stk-push/", json=body)
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field]
    if message:
        assert errors[field] == [message]


def test_customer_pays_limit_applies_to_the_value(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.post(
            "/payment/mpesa-stk-push/",
            json={
                "phone_number": "254712345678",
                "amount": 149000,
                "mobile_tarrif": "CUSTOMER-PAYS",
            },
        )
    assert response.status_code == 400
    assert response.json() == {"amount": ["Ensure this value is at most 150000."]}


def test_phone_formats_are_normalised(gateway):
    for raw in ("0712345671", "+254712345672", "254712345673", 254712345674, "0112345675"):
        session = gateway.push(raw)
        assert session["invoice"]["account"].startswith("254")
        assert len(session["invoice"]["account"]) == 12


def test_public_key_on_stk_push_is_403(gateway):
    with pytest.raises(KulmiPayNotAllowed) as raised:
        gateway.sdk(public_only=True).collect.send_request(
            "POST",
            "payment/mpesa-stk-push/",
            {
                "phone_number": "254712345678",
                "amount": 100,
                "public_key": gateway.merchant.public_key,
            },
            noauth=True,
        )
    assert json.loads(str(raised.value)) == {"detail": "This endpoint requires your secret key."}


def test_bad_keys_are_401(gateway):
    with pytest.raises(KulmiPayUnauthorized) as raised:
        gateway.sdk().collect.__class__(
            token="ISSecretKey_test_nope", base_url=gateway.api
        ).mpesa_stk_push(phone_number="254712345678", amount=100)
    assert json.loads(str(raised.value)) == {"detail": "Invalid api token"}
    with gateway.client() as client:
        response = client.post("/payment/mpesa-stk-push/", json={})
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
