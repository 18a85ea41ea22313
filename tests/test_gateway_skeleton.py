"""The gateway process: health, readiness on both databases, and the simulator at /sim."""

import asyncio

import httpx
import pytest
from sqlalchemy import text

from pesagate.app import create_app
from pesagate.config import Settings
from pesagate.db import SQLITE_READ_BUSY_MS, Database, is_sqlite
from tests.fixtures.daraja import DarajaTestClient
from tests.fixtures.servers import SHARED_SSL_CONTEXT, UvicornThread
from tests.fixtures.settings import LIVE_SETTINGS


@pytest.fixture
def gateway(db_url):
    settings = Settings(database_url=db_url)
    with UvicornThread(create_app(settings)) as server:
        yield server


def test_health_and_readiness(gateway):
    assert httpx.get(f"{gateway.url}/healthz", verify=SHARED_SSL_CONTEXT).json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/readyz", verify=SHARED_SSL_CONTEXT).json() == {"status": "ok"}


def test_readiness_fails_cleanly_without_a_database(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    with UvicornThread(create_app(settings)) as server:
        response = httpx.get(f"{server.url}/readyz", verify=SHARED_SSL_CONTEXT)
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_the_embedded_simulator_serves_daraja_at_sim(gateway, callback_receiver):
    client = DarajaTestClient(f"{gateway.url}/sim")
    try:
        response = client.push(phone="254712345678", CallBackURL=callback_receiver.url + "/cb")
        assert response.status_code == 200
        callback_receiver.wait_for("/cb")
        with pytest.raises(httpx.RemoteProtocolError):  # dropping works behind the mount too
            client.push(phone="254700009005", CallBackURL=callback_receiver.url + "/lost")
        callback_receiver.wait_for("/lost")
        page = client.http.get("/phone/254700009008").text
        assert 'const base = "/sim/phone/254700009008"' in page  # links follow the mount
    finally:
        client.close()


def test_simulator_off_means_no_sim_mount(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", simulator="off")
    with UvicornThread(create_app(settings)) as server:
        assert httpx.get(f"{server.url}/sim/", verify=SHARED_SSL_CONTEXT).status_code == 404


def test_live_mode_refuses_placeholder_settings():
    with pytest.raises(ValueError, match="PESAGATE_MPESA_CONSUMER_SECRET"):
        Settings(env="live")


def test_live_mode_refuses_the_test_suites_password_hashing():
    with pytest.raises(ValueError, match="PESAGATE_DASHBOARD_PASSWORD_HASHING"):
        Settings(**LIVE_SETTINGS, dashboard_password_hashing="minimal")


def test_live_mode_never_mounts_the_simulator(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", **LIVE_SETTINGS)
    assert not settings.simulator_enabled
    assert settings.effective_mpesa_base_url == "https://api.safaricom.co.ke"
    assert Settings().effective_mpesa_base_url == "http://127.0.0.1:8000/sim"


def test_engine_settings_per_backend(db_url):
    async def inspect():
        db = Database(db_url)
        try:
            if not is_sqlite(db_url):
                async with db.engine.connect() as connection:
                    return ((await connection.execute(text("SHOW server_version"))).scalar(),)
            pragmas = []
            for engine in (db.engine, db.write_engine):
                async with engine.connect() as connection:
                    for pragma in ("journal_mode", "foreign_keys", "busy_timeout"):
                        pragmas.append(
                            (await connection.execute(text(f"PRAGMA {pragma}"))).scalar()
                        )
            return tuple(pragmas)
        finally:
            await db.dispose()

    result = asyncio.run(inspect())
    if is_sqlite(db_url):
        # Statements run on the event loop: readers wait briefly, writers never (they take the
        # lock with an asynchronous retry instead).
        assert result == ("wal", 1, SQLITE_READ_BUSY_MS, "wal", 1, 0)
    else:
        assert int(result[0].split(".")[0]) >= 13


def test_pull_transactions_default_on_in_sandbox_and_off_in_live(monkeypatch):

    assert Settings().pull_transactions_enabled
    assert not Settings(**LIVE_SETTINGS).pull_transactions_enabled
    assert Settings(**LIVE_SETTINGS, mpesa_pull_transactions=True).pull_transactions_enabled
    monkeypatch.setenv("PESAGATE_MPESA_PULL_TRANSACTIONS", "false")
    assert not Settings().pull_transactions_enabled
    monkeypatch.setenv("PESAGATE_MPESA_PULL_TRANSACTIONS", "true")
    assert Settings(**LIVE_SETTINGS).pull_transactions_enabled
