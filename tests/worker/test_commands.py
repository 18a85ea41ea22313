"""Dead jobs as an operator meets them: `pesagate jobs list --dead` and `pesagate jobs retry`,
on both databases; a dead webhook delivery fails its event and a retry delivers it."""

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Environment, EventStatus, Job, Topic, WebhookEvent
from pesagate.services import create_merchant
from pesagate.webhooks.delivery import Deliverer
from pesagate.webhooks.emit import DELIVERY_JOB, add_event
from pesagate.worker.runner import ClaimedJob, Worker
from tests.fixtures.cli import cli_env, run_cli
from tests.fixtures.servers import CallbackReceiver
from tests.fixtures.webhooks import stored_endpoint


class CrashingDelivery:
    """Fails every run, as a delivery would while its event's row cannot be read; gives up as
    the real deliverer does."""

    def __init__(self, deliverer: Deliverer) -> None:
        self.gave_up = deliverer.gave_up

    async def __call__(self, job: ClaimedJob) -> None:
        raise RuntimeError("the event cannot be read")


@pytest.fixture
def receiver():
    started = CallbackReceiver().start()
    yield started
    started.stop()


async def add_test_event(db: Database, url: str) -> int:
    async with db.transaction() as session:
        merchant = await create_merchant(session, "Dead Jobs Shop", Environment.SANDBOX)
        endpoint = await stored_endpoint(session, merchant.business.id, url, "we_dead")
        return await add_event(session, endpoint, Topic.TEST, "test", {"topic": "test_event"})


async def run_until_dead(db: Database, handler: Any, max_failures: int) -> None:
    runner = Worker(db, {DELIVERY_JOB: handler}, name="test", max_failures=max_failures)
    for _ in range(max_failures):
        assert await runner.run_once() == 1
        async with db.transaction() as session:  # due again at once, not after the backoff
            for job in await session.scalars(select(Job).where(Job.dead_at.is_(None))):
                job.run_at = job.created_at
    assert await runner.run_once() == 0


async def rows(db: Database) -> tuple[list[Job], WebhookEvent]:
    async with db.read() as session:
        jobs = list(await session.scalars(select(Job).order_by(Job.id)))
        event = await session.scalar(select(WebhookEvent))
        assert event is not None
        return jobs, event


def test_a_dead_delivery_is_listed_retried_and_delivered(db_url, receiver):
    settings = Settings(database_url=db_url, webhook_timeout_s=5)
    env = cli_env(db_url)

    async def make_it_dead() -> int:
        db = Database(db_url)
        deliverer = Deliverer(db, settings)
        try:
            event_pk = await add_test_event(db, receiver.url + "/hook")
            await run_until_dead(db, CrashingDelivery(deliverer), max_failures=2)
            return event_pk
        finally:
            await deliverer.aclose()
            await db.dispose()

    event_pk = asyncio.run(make_it_dead())
    jobs, event = asyncio.run(_rows(db_url))
    [dead] = jobs
    assert dead.dead_at is not None and dead.failures == 2
    # The event fails (so later events of its key go on) with the reason, and can be replayed.
    assert event.status == EventStatus.FAILED
    assert event.failure_reason == (
        "Delivery stopped after repeated errors: RuntimeError: the event cannot be read"
    )

    listed = run_cli(["jobs", "list", "--dead", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    [shown] = json.loads(listed.stdout)
    assert (shown["id"], shown["kind"], shown["state"], shown["failures"]) == (
        dead.id,
        DELIVERY_JOB,
        "dead",
        2,
    )
    assert shown["last_error"] == "RuntimeError: the event cannot be read"
    table = run_cli(["jobs", "list", "--dead"], env)
    assert f"webhook:{event_pk}" in table.stdout and "dead" in table.stdout

    unknown = run_cli(["jobs", "retry", str(dead.id), str(dead.id + 100)], env)
    assert unknown.returncode == 1 and f"No dead job with id {dead.id + 100}" in unknown.stderr
    assert asyncio.run(_rows(db_url))[0][0].dead_at is not None  # nothing changed

    retried = run_cli(["jobs", "retry", str(dead.id)], env)
    assert retried.returncode == 0, retried.stderr
    jobs, event = asyncio.run(_rows(db_url))
    [alive] = jobs
    assert (alive.dead_at, alive.failures, alive.locked_by) == (None, 0, None)
    assert (event.status, event.attempts, event.failure_reason) == (EventStatus.PENDING, 0, None)
    assert json.loads(run_cli(["jobs", "list", "--dead", "--json"], env).stdout) == []

    async def deliver() -> None:
        db = Database(db_url)
        deliverer = Deliverer(db, settings)
        try:
            assert await Worker(db, {DELIVERY_JOB: deliverer}, name="test").run_once() == 1
        finally:
            await deliverer.aclose()
            await db.dispose()

    asyncio.run(deliver())
    jobs, event = asyncio.run(_rows(db_url))
    assert jobs == [] and event.status == EventStatus.DELIVERED
    [request] = receiver.for_path("/hook")
    assert request.headers["webhook-id"] == event.public_id


def test_retry_all_dead_and_its_refusals(db_url):
    env = cli_env(db_url)
    assert run_cli(["jobs", "retry"], env).returncode == 2  # neither ids nor --all-dead
    nothing = run_cli(["jobs", "retry", "--all-dead"], env)
    assert nothing.returncode == 0 and "retrying 0 job(s)" in nothing.stdout

    async def add_jobs() -> None:
        db = Database(db_url)
        try:
            async with db.transaction() as session:
                for key, dead_at in (("a", utc_now()), ("b", utc_now()), ("c", None)):
                    session.add(
                        Job(kind="k", key=key, run_at=utc_now(), dead_at=dead_at, failures=3)
                    )
        finally:
            await db.dispose()

    asyncio.run(add_jobs())
    retried = run_cli(["jobs", "retry", "--all-dead"], env)
    assert retried.returncode == 0 and "retrying 2 job(s)" in retried.stdout
    jobs = asyncio.run(_jobs(db_url))
    assert [(job.key, job.dead_at, job.failures) for job in jobs] == [
        ("a", None, 0),
        ("b", None, 0),
        ("c", None, 3),  # was not dead: left alone
    ]


async def _jobs(db_url: str) -> list[Job]:
    db = Database(db_url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(Job).order_by(Job.key)))
    finally:
        await db.dispose()


async def _rows(db_url: str) -> tuple[list[Job], WebhookEvent]:
    db = Database(db_url)
    try:
        return await rows(db)
    finally:
        await db.dispose()
