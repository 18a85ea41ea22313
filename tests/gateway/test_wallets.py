"""Wallets through the `kulmipay` SDK: balances from the ledger, statements, transfers."""

import asyncio
import json
import threading

import pytest
from kulmipay.exceptions import KulmiPayBadRequest

from pesagate.db import Database
from pesagate.ledger.verify import verify
from tests.fixtures.servers import wait_until


def test_sdk_wallet_calls(gateway):
    service = gateway.sdk()
    invoice_id = service.collect.mpesa_stk_push(phone_number="254712345678", amount=1500)[
        "invoice"
    ]["invoice_id"]
    gateway.wait_final(invoice_id)

    settlement = service.wallets.details(gateway.merchant.wallet_id)
    assert settlement["wallet_type"] == "SETTLEMENT"
    assert settlement["current_balance"] == settlement["available_balance"] == "1467.00"

    working = service.wallets.create(currency="KES", label="Marketing float", can_disburse=True)
    assert working["wallet_type"] == "WORKING" and working["current_balance"] == "0.00"
    listed = service.wallets.retrieve()
    assert {w["wallet_id"] for w in listed["results"]} == {
        gateway.merchant.wallet_id,
        working["wallet_id"],
    }

    moved = service.wallets.intra_transfer(
        gateway.merchant.wallet_id, working["wallet_id"], "400.50", "float"
    )
    assert moved["amount"] == "400.50"
    assert moved["from_data"]["wallet"]["available_balance"] == "1066.50"
    assert moved["to_data"]["wallet"]["available_balance"] == "400.50"
    assert moved["from_data"]["transaction"]["trans_type"] == "PAYOUT"
    assert moved["to_data"]["transaction"]["trans_type"] == "DEPOSIT"

    funded = service.wallets.fund(working["wallet_id"], "254712345679", 200, mode="MPESA-STK-PUSH")
    assert funded["invoice"]["wallet_id"] == working["wallet_id"]
    gateway.wait_final(funded["invoice"]["invoice_id"])
    assert service.wallets.details(working["wallet_id"])["available_balance"] == "596.10"

    statement = service.wallets.transactions(gateway.merchant.wallet_id)
    lines = statement["results"]
    assert [(line["trans_type"], line["value"], line["running_balance"]) for line in lines] == [
        ("PAYOUT", "-400.50", "1066.50"),
        ("CHARGE", "-33.00", "1467.00"),
        ("SALE", "1500.00", "1500.00"),
    ]
    assert lines[1]["invoice"]["invoice_id"] == invoice_id and lines[0]["invoice"] is None
    assert sum(float(line["value"]) for line in lines) == pytest.approx(1066.50)
    assert gateway.query(verify) == []


def test_transfer_refusals(gateway):
    service = gateway.sdk()
    working = service.wallets.create(currency="KES", label="ops")
    with pytest.raises(KulmiPayBadRequest) as raised:
        service.wallets.intra_transfer(
            gateway.merchant.wallet_id, working["wallet_id"], 10, "too much"
        )
    assert json.loads(str(raised.value)) == {
        "amount": ["Insufficient available balance: 0.00 KES."]
    }
    with pytest.raises(KulmiPayBadRequest) as raised:
        service.wallets.intra_transfer(
            gateway.merchant.wallet_id, gateway.other.wallet_id, 10, "foreign"
        )
    assert list(json.loads(str(raised.value))) == ["wallet_id"]
    with pytest.raises(KulmiPayBadRequest) as raised:
        service.wallets.intra_transfer(
            gateway.merchant.wallet_id, gateway.merchant.wallet_id, 10, "self"
        )
    assert list(json.loads(str(raised.value))) == ["wallet_id"]
    with pytest.raises(KulmiPayBadRequest) as raised:
        service.wallets.intra_transfer(
            gateway.merchant.wallet_id, working["wallet_id"], "1.001", ""
        )
    assert set(json.loads(str(raised.value))) == {"amount", "narrative"}


def test_wallet_validation_and_tenancy(gateway):
    with gateway.client(gateway.merchant.secret_key) as client:
        bad = client.post(
            "/wallets/",
            json={"currency": "USD", "label": "no/slashes!", "wallet_type": "SETTLEMENT"},
        )
        assert bad.status_code == 400
        assert set(bad.json()) == {"currency", "label", "wallet_type"}
        assert client.post("/wallets/", json={"currency": "KES", "label": "ops"}).status_code == 200
        duplicate = client.post("/wallets/", json={"currency": "KES", "label": "ops"})
        assert duplicate.json() == {"label": ["You already have a wallet with this label."]}
        assert client.get(f"/wallets/{gateway.other.wallet_id}/").status_code == 404
        assert client.get(f"/wallets/{gateway.other.wallet_id}/transactions/").status_code == 404
        assert (
            client.get("/transactions/", params={"wallet_id": gateway.other.wallet_id}).status_code
            == 404
        )
        assert (
            client.post(
                f"/wallets/{gateway.other.wallet_id}/intra_transfer/",
                json={"wallet_id": gateway.merchant.wallet_id, "amount": 1, "narrative": "steal"},
            ).status_code
            == 404
        )


def test_all_wallet_statement(gateway):
    invoice_id = gateway.push("254712345678", amount=100)["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)
    with gateway.client(gateway.merchant.secret_key) as client:
        everything = client.get("/transactions/").json()
        only = client.get("/transactions/", params={"wallet_id": gateway.merchant.wallet_id}).json()
        others = gateway.client(gateway.other.secret_key).get("/transactions/").json()
    assert everything["count"] == 2 == only["count"]
    assert others["count"] == 0


def test_concurrent_http_transfers_never_overdraw(gateway):
    invoice_id = gateway.push("254712345678", amount=1000)["invoice"]["invoice_id"]
    gateway.wait_final(invoice_id)  # 978.00 available
    working = gateway.sdk().wallets.create(currency="KES", label="race")
    statuses = []

    def move():
        with gateway.client(gateway.merchant.secret_key) as client:
            response = client.post(
                f"/wallets/{gateway.merchant.wallet_id}/intra_transfer/",
                json={"wallet_id": working["wallet_id"], "amount": 100, "narrative": "race"},
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=move) for _ in range(15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 9 and statuses.count(400) == 6
    details = gateway.sdk().wallets.details(gateway.merchant.wallet_id)
    assert details["available_balance"] == "78.00"
    assert gateway.query(verify) == []


def test_clearing_period(start_gateway):
    gateway = start_gateway()

    async def set_delay():
        from pesagate.merchants.service import PaymentSettingsUpdate, apply_settings, find_business

        db = Database(gateway.db_url)
        try:
            async with db.transaction() as session:
                business = await find_business(session, gateway.merchant.business_id)
                # Long enough for the checks below on a loaded machine (1 s was not, in CI).
                apply_settings(business, PaymentSettingsUpdate(clearing_delay_s=5))
        finally:
            await db.dispose()

    asyncio.run(set_delay())
    invoice_id = gateway.push("254712345678", amount=1000)["invoice"]["invoice_id"]
    final = gateway.wait_final(invoice_id)
    assert final["clearing_status"] == "CLEARING"
    wallet = gateway.sdk().wallets.details(gateway.merchant.wallet_id)
    assert (wallet["current_balance"], wallet["available_balance"]) == ("978.00", "0.00")
    lines = gateway.sdk().wallets.transactions(gateway.merchant.wallet_id)["results"]
    assert {line["status"] for line in lines} == {"CLEARING"}
    wait_until(lambda: gateway.status(invoice_id)["clearing_status"] == "AVAILABLE")
    wallet = gateway.sdk().wallets.details(gateway.merchant.wallet_id)
    assert wallet["available_balance"] == "978.00"
    assert gateway.query(verify) == []
