"""Idempotency-Key (SPEC section 7): one effect per key, the first answer replayed."""

import asyncio
import contextlib
import socket
import threading
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text

from pesagate.db import Database
from pesagate.idempotency import service
from pesagate.kit.clock import utc_now
from pesagate.models import Environment, IdempotencyKey, Invoice
from pesagate.services import create_merchant
from tests.fixtures.cli import ServeProcess
from tests.fixtures.servers import SHARED_SSL_CONTEXT, wait_until


def post(gateway, path, body, key, merchant=None):
    merchant = merchant or gateway.merchant
    with gateway.client(merchant.secret_key) as client:
        return client.post(path, json=body, headers={"Idempotency-Key": key} if key else {})


def count(gateway, model):
    return gateway.query(lambda s: s.scalar(select(func.count()).select_from(model)))


PUSH = {"phone_number": "254712345678", "amount": 100}


def test_a_retried_push_is_replayed_not_repeated(gateway):
    first = post(gateway, "/payment/mpesa-stk-push/", PUSH, "order-1")
    again = post(
        gateway,
        "/payment/mpesa-stk-push",
        {"amount": 100, "phone_number": "254712345678"},
        "order-1",
    )
    assert first.status_code == again.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert count(gateway, Invoice) == 1
    assert len(gateway.sim.control("GET", "/transactions")) == 1  # one prompt, one charge


def test_the_same_key_with_another_body_is_422(gateway):
    assert post(gateway, "/payment/mpesa-stk-push/", PUSH, "order-2").status_code == 200
    other = post(gateway, "/payment/mpesa-stk-push/", {**PUSH, "amount": 101}, "order-2")
    assert other.status_code == 422
    assert other.json() == {"detail": "This Idempotency-Key was used with a different request."}
    assert count(gateway, Invoice) == 1


def test_a_key_still_in_flight_is_409(gateway):
    async def hold():
        db = Database(gateway.db_url)
        try:
            business = await business_pk(db, gateway.merchant.business_id)
            print_ = service.fingerprint(
                "POST",
                "/api/v1/payment/mpesa-stk-push",
                b'{"amount":100,"phone_number":"254712345678"}',
            )
            return await service.claim(db, business, "order-3", print_, 60)
        finally:
            await db.dispose()

    asyncio.run(hold())
    response = post(gateway, "/payment/mpesa-stk-push/", PUSH, "order-3")
    assert response.status_code == 409
    assert count(gateway, Invoice) == 0


def test_a_dead_holder_is_taken_over(gateway):
    async def hold_and_die():
        db = Database(gateway.db_url)
        try:
            business = await business_pk(db, gateway.merchant.business_id)
            print_ = service.fingerprint(
                "POST",
                "/api/v1/payment/mpesa-stk-push",
                b'{"amount":100,"phone_number":"254712345678"}',
            )
            await service.claim(db, business, "order-4", print_, 60)
            await expire_locks(db)
        finally:
            await db.dispose()

    asyncio.run(hold_and_die())
    assert post(gateway, "/payment/mpesa-stk-push/", PUSH, "order-4").status_code == 200


def test_invalid_requests_store_nothing(gateway):
    bad = post(
        gateway, "/payment/mpesa-stk-push/", {"phone_number": "07", "amount": 100}, "order-5"
    )
    assert bad.status_code == 400
    assert count(gateway, IdempotencyKey) == 0
    fixed = post(gateway, "/payment/mpesa-stk-push/", PUSH, "order-5")
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers


def test_keys_are_scoped_per_business(gateway):
    mine = post(gateway, "/payment/mpesa-stk-push/", PUSH, "shared-key")
    theirs = post(gateway, "/payment/mpesa-stk-push/", PUSH, "shared-key", merchant=gateway.other)
    assert mine.status_code == theirs.status_code == 200
    assert mine.json()["invoice"]["invoice_id"] != theirs.json()["invoice"]["invoice_id"]


def test_too_long_a_key_is_400(gateway):
    response = post(gateway, "/payment/mpesa-stk-push/", PUSH, "k" * 256)
    assert response.status_code == 400
    assert list(response.json()) == ["Idempotency-Key"]


def test_transfers_wallets_and_webhooks_are_idempotent(gateway, callback_receiver):
    gateway.wait_final(gateway.push("254712345678", amount=1000)["invoice"]["invoice_id"])
    wallet = post(gateway, "/wallets/", {"currency": "KES", "label": "ops"}, "w-1")
    assert (
        post(gateway, "/wallets/", {"currency": "KES", "label": "ops"}, "w-1").json()
        == wallet.json()
    )
    body = {"wallet_id": wallet.json()["wallet_id"], "amount": 100, "narrative": "float"}
    path = f"/wallets/{gateway.merchant.wallet_id}/intra_transfer/"
    first = post(gateway, path, body, "t-1")
    second = post(gateway, path, body, "t-1")
    assert first.status_code == 200 and second.headers["idempotent-replayed"] == "true"
    details = gateway.sdk().wallets.details(wallet.json()["wallet_id"])
    assert details["available_balance"] == "100.00"  # moved once
    hook = {"endpoint": callback_receiver.url + "/h", "challenge": "c"}
    created = post(gateway, "/webhooks/", hook, "h-1")
    assert post(gateway, "/webhooks/", hook, "h-1").json()["id"] == created.json()["id"]
    with gateway.client(gateway.merchant.secret_key) as client:
        assert client.get("/webhooks/").json()["count"] == 1


def test_concurrent_identical_requests_create_one_invoice(gateway):
    statuses = []

    def send():
        statuses.append(post(gateway, "/payment/mpesa-stk-push/", PUSH, "race-1").status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count(gateway, Invoice) == 1
    assert set(statuses) <= {200, 409} and 200 in statuses


def test_expired_keys_are_pruned(gateway):
    assert post(gateway, "/payment/mpesa-stk-push/", PUSH, "old").status_code == 200

    async def expire_and_prune():
        db = Database(gateway.db_url)
        try:
            async with db.transaction() as session:
                await session.execute(
                    text("UPDATE idempotency_keys SET expires_at = :past"),
                    {"past": utc_now() - timedelta(seconds=1)},
                )
            return await service.prune(db)
        finally:
            await db.dispose()

    assert asyncio.run(expire_and_prune()) == 1
    assert count(gateway, IdempotencyKey) == 0


async def business_pk(db, business_id):
    async with db.read() as session:
        return await session.scalar(
            text("SELECT id FROM businesses WHERE business_id = :b"), {"b": business_id}
        )


def test_a_retry_after_the_holder_died_mid_push_answers_from_its_invoice(gateway):
    """The first request's process dies while its push waits on Daraja (the prompt may be on
    the phone): a retry after the lock must answer from that invoice and never push again."""
    with (
        silent_daraja() as daraja_url,
        ServeProcess(
            gateway.db_url, PESAGATE_MPESA_BASE_URL=daraja_url, PESAGATE_RUN_WORKER="false"
        ) as first,
    ):
        sender = threading.Thread(
            target=post_ignoring_errors,
            args=(f"{first.url}/api/v1/payment/mpesa-stk-push/", gateway.merchant, "died-1"),
        )
        sender.start()
        wait_until(lambda: count(gateway, Invoice) == 1, what="phase 1 to commit")
        first.process.kill()  # SIGKILL: no answer stored for the key
        first.process.wait()
        sender.join()
    expire_key_locks(gateway.db_url)
    retry = post(gateway, "/payment/mpesa-stk-push/", PUSH, "died-1")
    assert retry.status_code == 200, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    [invoice_id] = gateway.query(lambda s: s.scalars(select(Invoice.invoice_id))).all()
    assert retry.json()["invoice"]["invoice_id"] == invoice_id
    assert retry.json()["invoice"]["state"] == "PENDING"  # as it is; reconciliation settles it
    assert count(gateway, Invoice) == 1
    assert gateway.sim.control("GET", "/transactions") == []  # the retry prompted nobody
    again = post(gateway, "/payment/mpesa-stk-push/", PUSH, "died-1")
    assert again.json()["invoice"]["invoice_id"] == invoice_id


def test_a_request_whose_key_was_taken_over_creates_nothing(db_url):
    """A holder slower than the lock loses the key; its invoice transaction rolls back."""

    async def race():
        db = Database(db_url)
        try:
            async with db.transaction() as session:
                new = await create_merchant(session, "Slow Shop", Environment.SANDBOX)
            business = new.business.id
            slow = await service.claim(db, business, "slow-1", "print", 60)
            await expire_locks(db)
            retry = await service.claim(db, business, "slow-1", "print", 60)
            assert isinstance(slow, service.Claim) and isinstance(retry, service.Claim)
            with pytest.raises(service.TakenOver):
                async with db.transaction() as session:
                    await service.bind(session, slow, 42)
            async with db.transaction() as session:
                await service.bind(session, retry, 43)
            async with db.read() as session:
                return await session.scalar(select(IdempotencyKey.resource_pk))
        finally:
            await db.dispose()

    assert asyncio.run(race()) == 43


@contextlib.contextmanager
def silent_daraja():
    """A Daraja that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def post_ignoring_errors(url, merchant, key):
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(
            url,
            json=PUSH,
            headers={"Authorization": f"Bearer {merchant.secret_key}", "Idempotency-Key": key},
            timeout=60,
            verify=SHARED_SSL_CONTEXT,
        )


async def expire_locks(db):
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE idempotency_keys SET locked_until = :past"),
            {"past": utc_now() - timedelta(seconds=1)},
        )


def expire_key_locks(db_url):
    async def go():
        db = Database(db_url)
        try:
            await expire_locks(db)
        finally:
            await db.dispose()

    asyncio.run(go())
