"""Webhooks as a merchant's real HTTP receiver sees them: every transition, signed, in order,
retried, failed, replayed, disabled; and the endpoint API with its URL rules."""

import json
import logging
import os
import signal
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook, WebhookVerificationError

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Environment, EventStatus, Job, Topic, WebhookEvent
from pesagate.services import create_merchant
from pesagate.webhooks.delivery import EXCERPT_CHARS, Deliverer
from pesagate.webhooks.emit import DELIVERY_JOB, add_event, delivery_job_key
from pesagate.worker.runner import Worker
from tests.fixtures.servers import (
    SHARED_SSL_CONTEXT,
    CallbackReceiver,
    EndlessReceiver,
    bound_socket,
    wait_until,
)
from tests.fixtures.webhooks import stored_endpoint

# A generous timeout: on a loaded machine a first delivery (a new connection) can take over a
# second, and tests that count answers must not see it as a timeout. The timeout test sets its own.
FAST_WEBHOOKS = {"webhook_backoff_s": 0.1, "webhook_timeout_s": 10.0, "webhook_max_attempts": 4}


@pytest.fixture
def receiver():
    started = CallbackReceiver().start()
    yield started
    started.stop()


def add_endpoint(gateway, url, merchant=None, **flags):
    with gateway.client((merchant or gateway.merchant).secret_key) as client:
        response = client.post(
            "/webhooks/", json={"endpoint": url, "challenge": "my-challenge", **flags}
        )
    assert response.status_code == 200, response.text
    return response.json()


def verified(request, secret):
    """The body, after the standardwebhooks library accepted its signature."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    return Webhook(secret).verify(request.body.decode(), headers)


def states_of(requests, secret):
    return [verified(request, secret)["state"] for request in requests]


def _all_delivered(logged, count):
    return len(logged) == count and {event["status"] for event in logged} == {"DELIVERED"}


def events(gateway, **params):
    with gateway.client(gateway.merchant.secret_key) as client:
        return client.get("/webhooks/events/", params=params).json()["results"]


def test_every_transition_is_delivered_signed_and_in_order(start_gateway, receiver):
    # No query meanwhile: the callbacks decide, so COMPLETE's event carries the receipt.
    gateway = start_gateway(**FAST_WEBHOOKS, reconcile_grace_s=60.0)
    endpoint = add_endpoint(gateway, receiver.url + "/hooks")
    secret = endpoint["signing_secret"]
    assert secret.startswith("whsec_")
    invoice_id = gateway.push("254712345678")["invoice"]["invoice_id"]
    requests = receiver.wait_for("/hooks", count=3)
    bodies = [verified(request, secret) for request in requests]
    assert [body["state"] for body in bodies] == ["PENDING", "PROCESSING", "COMPLETE"]
    assert {body["invoice_id"] for body in bodies} == {invoice_id}
    assert all(body["challenge"] == "my-challenge" for body in bodies)
    assert bodies[-1]["mpesa_reference"]
    ids = [request.headers["webhook-id"] for request in requests]
    assert len(set(ids)) == 3
    failed_id = gateway.push("254700001032")["invoice"]["invoice_id"]
    later = receiver.wait_for("/hooks", count=6)[3:]
    assert states_of(later, secret) == ["PENDING", "PROCESSING", "FAILED"]
    assert verified(later[-1], secret)["invoice_id"] == failed_id
    # The receiver has the sixth request before the gateway records its answer: wait for it.
    wait_until(lambda: _all_delivered(events(gateway, topic="collection_event"), 6))
    logged = events(gateway, topic="collection_event")
    assert json.loads(logged[0]["payload"])["state"] == "FAILED"  # newest first
    assert logged[0]["attempt_log"][0]["status_code"] == 200


def test_a_forged_or_stale_request_is_detectable(start_gateway, receiver):
    gateway = start_gateway(**FAST_WEBHOOKS)
    secret = add_endpoint(gateway, receiver.url + "/hooks")["signing_secret"]
    gateway.push("254712345678")
    request = receiver.wait_for("/hooks")[0]
    headers = {name.lower(): value for name, value in request.headers.items()}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.decode().replace("PENDING", "COMPLETE"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(
            request.body.decode(), {**headers, "webhook-timestamp": "1000000000"}
        )
    other = "whsec_" + "A" * 32
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body.decode(), headers)


def test_retries_on_500_keep_the_webhook_id_and_the_order(start_gateway, receiver):
    gateway = start_gateway(**FAST_WEBHOOKS)
    secret = add_endpoint(gateway, receiver.url + "/hooks")["signing_secret"]
    receiver.statuses = [500, 503]  # the first two requests fail
    gateway.push("254712345678")
    requests = receiver.wait_for("/hooks", count=5)
    first_event = requests[0].headers["webhook-id"]
    assert [r.headers["webhook-id"] for r in requests[:3]] == [first_event] * 3
    delivered = [r for r in requests if r.headers["webhook-id"] != first_event or r is requests[2]]
    assert states_of(delivered, secret) == ["PENDING", "PROCESSING", "COMPLETE"]
    [pending_event] = [e for e in events(gateway) if json.loads(e["payload"])["state"] == "PENDING"]
    assert pending_event["attempts"] == 3
    assert [a["status_code"] for a in pending_event["attempt_log"]] == [500, 503, 200]


def test_timeouts_and_refused_connections_are_retried(start_gateway):
    # Attempts to spare: on a loaded machine several can be refused before the receiver starts.
    gateway = start_gateway(
        **{**FAST_WEBHOOKS, "webhook_timeout_s": 2.0, "webhook_max_attempts": 10}
    )
    sock = bound_socket()  # reserved, but nobody listens yet: connections are refused
    port = sock.getsockname()[1]
    sock.close()
    secret = add_endpoint(gateway, f"http://127.0.0.1:{port}/late")["signing_secret"]
    gateway.push("254712345678")
    # An attempt refused and recorded, not just begun: one begun but not yet connecting
    # would reach the receiver started next, and no refusal would be logged.
    wait_until(
        lambda: any(a["error"] for e in events(gateway) for a in e["attempt_log"]),
        what="a refused attempt to be recorded",
    )
    late = CallbackReceiver(port=port, delays=[6.0]).start()  # the first answer is too slow
    try:
        requests = late.wait_for("/late", count=4)
        assert states_of(requests[1:], secret) == ["PENDING", "PROCESSING", "COMPLETE"]
    finally:
        late.stop()
    logged = next(e for e in events(gateway) if json.loads(e["payload"])["state"] == "PENDING")
    errors = [attempt["error"] or "" for attempt in logged["attempt_log"]]
    assert any("Connect" in error or "refused" in error.lower() for error in errors)
    assert any("timed out" in error for error in errors)


def test_failed_after_the_last_attempt_then_replayed(start_gateway, receiver):
    gateway = start_gateway(**FAST_WEBHOOKS)
    secret = add_endpoint(gateway, receiver.url + "/hooks")["signing_secret"]
    receiver.status = 500
    gateway.push("254712345678")
    failed = wait_until(
        lambda: len(evs := events(gateway, status="FAILED")) == 3 and evs, what="3 FAILED events"
    )
    assert {e["attempts"] for e in failed} == {4}
    assert {e["failure_reason"] for e in failed} == {"HTTP 500"}
    assert len(receiver.received) == 12
    receiver.status = 200
    oldest = failed[-1]
    with gateway.client(gateway.merchant.secret_key) as client:
        replayed = client.post(f"/webhooks/events/{oldest['id']}/replay/")
        assert replayed.status_code == 200 and replayed.json()["status"] == "PENDING"
        again = client.post(f"/webhooks/events/{oldest['id']}/replay/")
    wait_until(
        lambda: any(e["id"] == oldest["id"] and e["status"] == "DELIVERED" for e in events(gateway))
    )
    last = receiver.received[-1]
    assert last.headers["webhook-id"] == oldest["id"]
    assert verified(last, secret)["state"] == "PENDING"
    assert again.status_code in (200, 409)  # already PENDING again, or delivered meanwhile


def test_replay_refuses_events_that_did_not_fail(start_gateway, receiver):
    gateway = start_gateway(**FAST_WEBHOOKS)
    add_endpoint(gateway, receiver.url + "/hooks")
    gateway.push("254712345678")
    receiver.wait_for("/hooks", count=3)
    delivered = wait_until(lambda: (evs := events(gateway, status="DELIVERED")) and evs)
    with gateway.client(gateway.merchant.secret_key) as client:
        response = client.post(f"/webhooks/events/{delivered[0]['id']}/replay/")
        assert response.status_code == 409
        assert response.json() == {"detail": "Only FAILED events can be replayed."}
        assert client.post("/webhooks/events/msg_nope/replay/").status_code == 404


def test_the_endpoint_is_disabled_at_the_threshold(start_gateway, receiver, caplog):
    caplog.set_level(logging.WARNING)
    gateway = start_gateway(**{**FAST_WEBHOOKS, "webhook_disable_threshold": 4})
    endpoint = add_endpoint(gateway, receiver.url + "/hooks")
    receiver.status = 500
    gateway.push("254712345678")
    with gateway.client(gateway.merchant.secret_key) as client:
        state = wait_until(
            lambda: (
                not (ep := client.get(f"/webhooks/{endpoint['id']}/").json())["is_active"] and ep
            )
        )
        assert state["failures_count"] >= 4
        assert "webhook endpoint failing" in caplog.text
        assert "webhook endpoint disabled" in caplog.text
        wait_until(lambda: all(e["status"] == "FAILED" for e in events(gateway)))
        receiver.status = 200
        enabled = client.patch(f"/webhooks/{endpoint['id']}/", json={"is_active": True}).json()
        assert enabled["is_active"] and enabled["failures_count"] == 0
        for event in events(gateway, status="FAILED"):
            assert client.post(f"/webhooks/events/{event['id']}/replay/").status_code == 200
    wait_until(lambda: all(e["status"] == "DELIVERED" for e in events(gateway)))


def test_wallet_transfer_events(start_gateway, receiver):
    gateway = start_gateway(**FAST_WEBHOOKS)
    secret = add_endpoint(
        gateway, receiver.url + "/transfers", collection_event=False, wallet_transfer_event=True
    )["signing_secret"]
    gateway.wait_final(gateway.push("254712345678", amount=500)["invoice"]["invoice_id"])
    working = gateway.sdk().wallets.create(currency="KES", label="ops")
    gateway.sdk().wallets.intra_transfer(
        gateway.merchant.wallet_id, working["wallet_id"], 100, "float"
    )
    [request] = receiver.wait_for("/transfers")
    body = verified(request, secret)
    assert body["amount"] == "100.00"
    assert body["challenge"] == "my-challenge"
    assert body["from_data"]["wallet"]["wallet_id"] == gateway.merchant.wallet_id
    assert body["from_data"]["transaction"]["value"] == "-100.00"
    assert body["to_data"]["wallet"]["available_balance"] == "100.00"
    assert [r.path for r in receiver.received] == ["/transfers"]  # no collection events


def test_endpoint_api(gateway, receiver):
    created = add_endpoint(gateway, receiver.url + "/hooks", reversal_event=True)
    assert created["collection_event"] and created["reversal_event"]
    assert not created["wallet_transfer_event"] and created["is_active"]
    with gateway.client(gateway.merchant.secret_key) as client:
        listed = client.get("/webhooks/").json()["results"]
        assert [e["id"] for e in listed] == [created["id"]]
        assert "signing_secret" not in listed[0] and "challenge" not in listed[0]
        text = client.get(f"/webhooks/{created['id']}/").text
        assert "my-challenge" not in text and created["signing_secret"] not in text
        patched = client.patch(f"/webhooks/{created['id']}/", json={"reversal_event": False})
        assert patched.json()["reversal_event"] is False
        bad = client.post("/webhooks/", json={"endpoint": "ftp://x", "challenge": ""})
        assert bad.status_code == 400 and set(bad.json()) == {"endpoint", "challenge"}
        other = gateway.client(gateway.other.secret_key)
        assert other.get(f"/webhooks/{created['id']}/").status_code == 404
        assert other.delete(f"/webhooks/{created['id']}/").status_code == 404
        assert client.delete(f"/webhooks/{created['id']}/").status_code == 204
        assert client.get(f"/webhooks/{created['id']}/").status_code == 404
        assert client.get("/webhooks/").json()["count"] == 0


def test_live_mode_refuses_private_destinations(gateway):
    from tests.gateway.test_api import live_server

    new, server = live_server(gateway.db_url)
    with server:
        client = httpx.Client(
            base_url=f"{server.url}/api/v1",
            headers={"Authorization": f"Bearer {new.keys.secret_key}"},
            verify=SHARED_SSL_CONTEXT,
        )
        for url in (
            "http://example.com/hook",  # not https
            "https://127.0.0.1/hook",  # loopback
            "https://10.1.2.3/hook",  # private
            "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
            "https://localhost/hook",  # resolves to loopback
            "https://[::1]/hook",
        ):
            response = client.post("/webhooks/", json={"endpoint": url, "challenge": "c"})
            assert response.status_code == 400, url
            assert list(response.json()) == ["endpoint"]


def test_at_least_once_when_a_worker_is_killed_mid_delivery(start_gateway, db_url):
    gateway = start_gateway(run_worker=False, **FAST_WEBHOOKS)
    slow = CallbackReceiver(delays=[4.0]).start()  # the first delivery hangs while we kill
    try:
        secret = add_endpoint(gateway, slow.url + "/hooks")["signing_secret"]
        env = {
            **os.environ,
            "PESAGATE_DATABASE_URL": db_url,
            "PESAGATE_PUBLIC_URL": gateway.url,
            "PESAGATE_WORKER_LEASE_S": "1.5",
            "PESAGATE_WORKER_POLL_S": "0.1",
            "PESAGATE_WEBHOOK_TIMEOUT_S": "10",
        }
        gateway.push("254700009004")  # refused at once: only its PENDING and FAILED events
        first = subprocess.Popen([sys.executable, "-m", "pesagate", "worker"], env=env)
        try:
            slow.wait_for("/hooks", count=1)  # the worker is inside the delivery now
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        second = subprocess.Popen([sys.executable, "-m", "pesagate", "worker"], env=env)
        try:
            requests = slow.wait_for("/hooks", count=3, timeout_s=30)
        finally:
            second.terminate()
            second.wait()
        ids = [r.headers["webhook-id"] for r in requests]
        assert ids[0] == ids[1] != ids[2]  # the interrupted event came again, same id
        assert states_of(requests[1:], secret) == ["PENDING", "FAILED"]
    finally:
        slow.stop()


async def test_live_delivery_rechecks_the_destination_every_time(db_url):
    """An endpoint whose name now resolves privately (or was stored before the rule) is refused
    at delivery, before any connection is made."""
    settings = Settings(
        env="live",
        database_url=db_url,
        public_url="https://pay.example.com",
        mpesa_consumer_key="live-key-123",
        mpesa_consumer_secret="live-secret-456",
        mpesa_shortcode="600123",
        mpesa_passkey="not-the-sandbox-passkey",
        checkout_secret="a-live-checkout-signing-secret-of-40-chars",
    )
    db = Database(db_url)
    deliverer = Deliverer(db, settings)
    try:
        async with db.transaction() as session:
            merchant = await create_merchant(session, "Live Shop", Environment.LIVE)
            endpoint = await stored_endpoint(
                session, merchant.business.id, "https://localhost:9/hook", "stored-earlier"
            )
            event_pk = await add_event(
                session, endpoint, Topic.TEST, "test", {"topic": "test_event"}
            )
        result = await deliverer.attempt_once(event_pk)
        assert result is not None and result.status_code is None
        assert "private" in result.error
        async with db.read() as session:
            stored = await session.get(WebhookEvent, event_pk)
            assert stored.status == EventStatus.FAILED
    finally:
        await deliverer.aclose()
        await db.dispose()


def test_a_hanging_receiver_does_not_delay_another_merchants_webhooks(start_gateway, receiver):
    hang_s = 60.0  # the hanging receiver answers long after the gateway gave up (30 s)
    gateway = start_gateway(
        **{**FAST_WEBHOOKS, "webhook_timeout_s": 30.0},
        worker_concurrency=6,
        worker_lane_slots=2,
    )
    hanging = CallbackReceiver(delay_s=hang_s).start()
    try:
        # Three hanging endpoints of one business: one lane per endpoint would let them hold
        # all six slots; its business's group holds two (one each), whatever its endpoints.
        for n in range(3):
            add_endpoint(gateway, f"{hanging.url}/hang{n}")
        for n in range(4):  # four invoices: twelve deliveries that could run at once
            gateway.push(f"25471234560{n}")
        wait_until(lambda: hanging.in_flight >= 2, what="deliveries hanging")
        secret = add_endpoint(gateway, receiver.url + "/other", merchant=gateway.other)[
            "signing_secret"
        ]
        invoice_id = gateway.push("254712345678", merchant=gateway.other)["invoice"]["invoice_id"]
        # Delivered while the hang goes on, in a bound far below it.
        request = receiver.wait_for("/other", timeout_s=10)[0]
        assert hanging.in_flight == 2  # still hanging, never more than the business's two slots
        assert hanging.max_in_flight == 2
        body = verified(request, secret)
        assert (body["invoice_id"], body["state"]) == (invoice_id, "PENDING")
        requests = receiver.wait_for("/other", count=3, timeout_s=10)
        assert states_of(requests, secret) == ["PENDING", "PROCESSING", "COMPLETE"]
    finally:
        hanging.stop()


def test_an_endless_answer_is_cut_short_and_its_start_kept(start_gateway):
    gateway = start_gateway(**FAST_WEBHOOKS)
    endless = EndlessReceiver().start()
    try:
        add_endpoint(gateway, endless.url + "/hook")
        gateway.push("254700009004")  # refused at once: its PENDING and FAILED events
        delivered = wait_until(
            lambda: len(evs := events(gateway, status="DELIVERED")) == 2 and evs,
            what="both events delivered",
        )
        assert endless.finished.wait(10)
        assert endless.requests == 2
        # What the socket buffers held before the gateway hung up, not the answer.
        assert endless.sent < 16 * 1024 * 1024
        attempts = [attempt for event in delivered for attempt in event["attempt_log"]]
        assert [a["status_code"] for a in attempts] == [200, 200]
        assert {a["response_excerpt"] for a in attempts} == {"x" * EXCERPT_CHARS}
    finally:
        endless.stop()


async def test_a_waiting_event_sleeps_while_the_earlier_one_backs_off_and_is_woken(db_url):
    """Behind an earlier event of its key that is backing off, an event does not poll: it looks
    again when the earlier one may try again, and runs as soon as that one settles."""
    receiver = CallbackReceiver(statuses=[500]).start()  # the first attempt fails
    db = Database(db_url)
    # A backoff below ORDER_WAIT_MAX_S (30 s), the longest a waiting event sleeps.
    deliverer = Deliverer(db, Settings(database_url=db_url, webhook_backoff_s=10.0))
    runner = Worker(db, {DELIVERY_JOB: deliverer}, name="test")
    try:
        async with db.transaction() as session:
            merchant = await create_merchant(session, "Order Shop", Environment.SANDBOX)
            endpoint = await stored_endpoint(
                session, merchant.business.id, receiver.url + "/hook", "we_order"
            )
            first = await add_event(session, endpoint, Topic.TEST, "k", {"n": 1})
            second = await add_event(session, endpoint, Topic.TEST, "k", {"n": 2})

        async def job_run_at(event_pk):
            async with db.read() as session:
                return await session.scalar(
                    select(Job.run_at).where(Job.key == delivery_job_key(event_pk))
                )

        async def make_due(event_pk):
            async with db.transaction() as session:
                await session.execute(
                    update(Job)
                    .where(Job.key == delivery_job_key(event_pk))
                    .values(run_at=utc_now())
                )

        assert await runner.run_once() == 2  # the first fails (500), the second waits
        retry_at = await job_run_at(first)
        assert retry_at > utc_now() + timedelta(seconds=5)  # ~10 s of backoff
        await make_due(second)  # it looks while the first one backs off
        assert await runner.run_once() == 1
        assert await job_run_at(second) >= retry_at  # not before the first tries again
        assert len(receiver.received) == 1

        await make_due(first)
        assert await runner.run_once() == 1  # delivered: it wakes the second
        assert await job_run_at(second) <= utc_now()
        assert await runner.run_once() == 1
        assert [r.json()["n"] for r in receiver.received] == [1, 1, 2]
    finally:
        receiver.stop()
        await deliverer.aclose()
        await db.dispose()
