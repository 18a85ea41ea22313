"""The gateway's command line as a user runs it: processes of its own against real SQLite and
PostgreSQL databases, and a real `pesagate serve` taking payments from the API and from
`pesagate stk-push`."""

import asyncio
import hashlib
import json
import re
from pathlib import Path

import httpx
from sqlalchemy import func, select
from standardwebhooks import Webhook

from pesagate import migrate
from pesagate.accounts import service as accounts
from pesagate.db import Database
from pesagate.models import ApiKey, Base, Business, Environment, User, Wallet
from pesagate.services import create_merchant
from pesagate.simulator import SimulatorSettings, create_simulator_app
from tests.fixtures.cli import (
    ServeProcess,
    cli_env,
    db_rows,
    finish,
    run_cli,
    start_cli,
)
from tests.fixtures.dashboard import DashboardClient
from tests.fixtures.digits import arabic_indic
from tests.fixtures.servers import SHARED_SSL_CONTEXT, UvicornThread, wait_until

WALLET_ID = re.compile(r"[A-Z0-9]{7}")
COMMANDS = ("serve", "worker", "migrate", "simulator", "merchant", "keys", "stk-push")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def existing_merchant(db_url: str, name: str = "Duka la Juma") -> tuple[str, str, str]:
    """A merchant made in-process: (business_id, public_key, secret_key)."""

    async def go() -> tuple[str, str, str]:
        db = Database(db_url)
        try:
            async with db.transaction() as session:
                new = await create_merchant(session, name, Environment.SANDBOX)
            return new.business.business_id, new.keys.public_key, new.keys.secret_key
        finally:
            await db.dispose()

    return asyncio.run(go())


def business_row(db_url: str, business_id: str) -> tuple:
    [row] = db_rows(
        db_url,
        select(
            Business.default_tariff,
            Business.fee_rate_ppm,
            Business.fee_min_minor,
            Business.min_amount_minor,
            Business.max_amount_minor,
            Business.updated_at,
        ).where(Business.business_id == business_id),
    )
    return tuple(row)


def push_through(serve: ServeProcess, secret_key: str) -> dict:
    """An STK push through a running `pesagate serve`, as the banner's curl line sends it."""
    response = httpx.post(
        f"{serve.url}/api/v1/payment/mpesa-stk-push/",
        json={"phone_number": "254712345678", "amount": 100},
        headers={"Authorization": f"Bearer {secret_key}"},
        timeout=30,
        verify=SHARED_SSL_CONTEXT,
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


def test_help_lists_every_command():
    result = run_cli(["--help"], cli_env())
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^│ (\S+)\s", result.stdout, re.MULTILINE)
    assert set(COMMANDS) <= set(listed), result.stdout


def test_stk_push_without_a_key_exits_2_and_says_what_is_missing():
    result = run_cli(["stk-push", "254712345678", "100", "--url", "http://127.0.0.1:9"], cli_env())
    assert result.returncode == 2
    message = result.stdout + result.stderr
    assert "--secret-key" in message and "PESAGATE_SECRET_KEY" in message
    assert "Traceback" not in message


def test_migrate_prints_the_revision(empty_db_url):
    assert asyncio.run(migrate.current_revision(empty_db_url)) is None
    result = run_cli(["migrate"], cli_env(empty_db_url))
    assert result.returncode == 0, result.stderr
    head = migrate.head_revision()
    assert head is not None
    assert f"schema at revision {head}" in result.stdout
    assert asyncio.run(migrate.current_revision(empty_db_url)) == head


def test_merchant_create_prints_json_and_stores_only_the_secret_keys_hash(db_url):
    result = run_cli(["merchant", "create", "Mama Mboga Store", "--json"], cli_env(db_url))
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert set(created) == {"business_id", "name", "public_key", "secret_key", "wallet_id"}
    assert created["name"] == "Mama Mboga Store"
    assert created["public_key"].startswith("ISPubKey_test_")
    assert created["secret_key"].startswith("ISSecretKey_test_")
    assert WALLET_ID.fullmatch(created["wallet_id"])

    [business] = db_rows(db_url, select(Business.id, Business.business_id, Business.name))
    assert (business.business_id, business.name) == (created["business_id"], "Mama Mboga Store")
    [wallet] = db_rows(db_url, select(Wallet.wallet_id, Wallet.business_id))
    assert tuple(wallet) == (created["wallet_id"], business.id)
    keys = db_rows(db_url, select(ApiKey.kind, ApiKey.lookup, ApiKey.revoked_at))
    assert sorted(tuple(key) for key in keys) == [
        ("public", created["public_key"], None),
        ("secret", sha256(created["secret_key"]), None),
    ]
    # The plaintext secret is nowhere in the database, in no column of any table.
    secret = created["secret_key"]
    for table in Base.metadata.sorted_tables:
        for row in db_rows(db_url, select(table)):
            assert not any(secret in str(value) for value in row), (table.name, row)


def test_merchant_list_settings_and_keys_rotate(db_url):
    business_id, old_public, old_secret = existing_merchant(db_url, "Mama Mboga Store")
    env = cli_env(db_url)
    defaults = business_row(db_url, business_id)
    assert defaults[:5] == (None, 22_000, 0, 1_000, 15_000_000)

    # `merchant list`, `keys rotate`, and bad settings (each exits non-zero with a readable
    # message and changes nothing), all at once: independent commands, as on a busy server.
    listing = start_cli(["merchant", "list"], env)
    rotation = start_cli(["keys", "rotate", business_id], env)
    bad = {"merchant": (["BIZ_NOSUCH1", "--fee-rate", "0.01"], "No merchant 'BIZ_NOSUCH1'")}
    if db_url.startswith("sqlite"):
        # Rejected while parsing, before any database is opened: one backend is enough
        # (each of these processes costs a fork and its command).
        bad["fee rate"] = ([business_id, "--fee-rate", "2"], "fee rate must be")
        bad["tariff"] = ([business_id, "--tariff", "NOPE"], "'NOPE' is not a valid Tariff")
    rejected = {
        what: start_cli(["merchant", "settings", *args], env) for what, (args, _) in bad.items()
    }
    stdout, stderr = finish(listing)
    assert listing.returncode == 0, stderr
    [line] = [line for line in stdout.splitlines() if business_id in line]
    assert "Mama Mboga Store" in line and "0.022" in line and "150000.00" in line
    for what, process in rejected.items():
        stdout, stderr = finish(process)
        assert process.returncode != 0, what
        assert bad[what][1] in stderr, (what, stdout, stderr)
        assert "Traceback" not in stdout + stderr, what
    assert business_row(db_url, business_id) == defaults

    stdout, stderr = finish(rotation)
    assert rotation.returncode == 0, stderr
    new_public = re.search(r"public_key: (ISPubKey_test_\S+)", stdout)
    new_secret = re.search(r"secret_key: (ISSecretKey_test_\S+)", stdout)
    assert new_public and new_secret, stdout
    assert (new_public[1], new_secret[1]) != (old_public, old_secret)
    keys = {
        row.lookup: row.revoked_at
        for row in db_rows(db_url, select(ApiKey.lookup, ApiKey.revoked_at))
    }
    assert set(keys) == {old_public, sha256(old_secret), new_public[1], sha256(new_secret[1])}
    assert keys[old_public] is not None and keys[sha256(old_secret)] is not None
    assert keys[new_public[1]] is None and keys[sha256(new_secret[1])] is None

    changed = run_cli(
        [
            "merchant",
            "settings",
            business_id,
            "--tariff",
            "CUSTOMER-PAYS",
            "--fee-rate",
            "0.03",
            "--fee-min",
            "5",
            "--min-amount",
            "20",
            "--max-amount",
            "1000",
        ],
        env,
    )
    assert changed.returncode == 0, changed.stderr
    [line] = [line for line in changed.stdout.splitlines() if business_id in line]
    assert "CUSTOMER-PAYS" in line and "0.03" in line and "1000.00" in line
    assert business_row(db_url, business_id)[:5] == ("CUSTOMER-PAYS", 30_000, 500, 2_000, 100_000)


def test_merchant_settings_rejects_a_non_number_readably(tmp_path):
    # The value is parsed before the database is opened: no merchant is needed.
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'pesagate.db'}"
    result = run_cli(["merchant", "settings", "BIZ_ANY", "--fee-min", "abc"], cli_env(db_url))
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "abc" in result.stderr


def test_merchant_settings_refuse_a_fee_that_can_reach_the_amount(db_url):
    # A minimum fee of KES 50 on payments of KES 10 would net -40 each: refused, nothing changes.
    business_id, _, _ = existing_merchant(db_url)
    env = cli_env(db_url)
    before = business_row(db_url, business_id)
    refused = {
        "fee over amount": start_cli(
            ["merchant", "settings", business_id, "--fee-min", "50", "--min-amount", "10"], env
        ),
        "digits of another script": start_cli(
            ["merchant", "settings", business_id, "--fee-min", arabic_indic("5")], env
        ),
    }
    errors = {}
    for what, process in refused.items():
        stdout, stderr = finish(process)
        assert process.returncode != 0, what
        assert "Traceback" not in stdout + stderr, what
        errors[what] = " ".join(stderr.split())
    assert "fee on the smallest payment (KES 10) would be KES 50" in errors["fee over amount"]
    assert "not a valid KES amount" in errors["digits of another script"]
    assert business_row(db_url, business_id) == before


def test_merchant_list_shows_whole_business_ids_on_an_80_column_terminal(tmp_path):
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'pesagate.db'}"
    asyncio.run(migrate.upgrade(db_url))
    business_id, _, _ = existing_merchant(db_url, "Mama Mboga Store")
    result = run_cli(["merchant", "list"], cli_env(db_url, COLUMNS="80"))
    assert result.returncode == 0, result.stderr
    assert business_id in result.stdout


def sign_in_statuses(url: str, forwarded_for: str, attempts: int) -> list[int]:
    """Wrong-password sign-ins through a reverse proxy that says the client is `forwarded_for`."""
    client = DashboardClient(url)
    client.http.headers["X-Forwarded-For"] = forwarded_for
    try:
        return [
            client.sign_in("nobody@shop.example", "not the password").status_code
            for _ in range(attempts)
        ]
    finally:
        client.close()


def test_serve_creates_a_demo_merchant_that_takes_payments(empty_db_url):
    limit = {"PESAGATE_DASHBOARD_LOGIN_LIMIT_PER_ADDRESS": "2/minute"}
    with ServeProcess(empty_db_url, **limit) as serve:
        output = serve.output()
        business_id = serve.field("business_id")
        public_key = serve.field("public_key")
        secret_key = serve.field("secret_key")
        wallet_id = serve.field("wallet_id")
        assert re.fullmatch(r"BIZ_[A-Z0-9]{8}", business_id)
        assert public_key.startswith("ISPubKey_test_")
        assert secret_key.startswith("ISSecretKey_test_")
        assert WALLET_ID.fullmatch(wallet_id)
        assert f"curl -s {serve.url}/api/v1/payment/mpesa-stk-push/" in output
        assert f"Authorization: Bearer {secret_key}" in output

        auth = {"Authorization": f"Bearer {secret_key}"}
        session = push_through(serve, secret_key)
        assert session["id"]
        invoice = session["invoice"]
        assert (invoice["value"], invoice["wallet_id"]) == ("100.00", wallet_id)
        assert invoice["state"] in ("PENDING", "PROCESSING", "COMPLETE")

        def final_state() -> str | None:
            status = httpx.post(
                f"{serve.url}/api/v1/payment/status/",
                json={"invoice_id": invoice["invoice_id"]},
                headers=auth,
                timeout=30,
                verify=SHARED_SSL_CONTEXT,
            ).json()["invoice"]["state"]
            return status if status in ("COMPLETE", "FAILED") else None

        # Settled before the CLI pushes: the simulator allows one open prompt per phone.
        assert wait_until(final_state, what="the API's invoice to settle") == "COMPLETE"

        # The printed dashboard login shows the paid invoice.
        login = re.search(r"/dashboard/\s+sign in as (\S+), password (\S+)", output)
        assert login, output
        # Behind a reverse proxy on this host, sign-in attempts count per forwarded address.
        assert sign_in_statuses(serve.url, "203.0.113.7", 3) == [401, 401, 429]
        assert sign_in_statuses(serve.url, "203.0.113.8", 1) == [401]
        dashboard = DashboardClient(serve.url)
        try:
            assert dashboard.sign_in(login.group(1), login.group(2)).status_code == 303
            payments = dashboard.get(f"/b/{business_id}/payments/", params={"state": "COMPLETE"})
            assert invoice["invoice_id"] in payments.text
        finally:
            dashboard.close()

        stk_push = start_cli(
            [
                *("stk-push", "254712345678", "150", "--url", serve.url),
                *("--secret-key", secret_key, "--timeout-s", "30"),
            ],
            cli_env(),
        )
        try:
            # Meanwhile a second node starts on the same database: it makes no second demo
            # merchant, and takes the same merchant's payments.
            proxy = {"PESAGATE_FORWARDED_ALLOW_IPS": "192.0.2.1", **limit}
            with ServeProcess(empty_db_url, **proxy) as second:
                assert "demo merchant" not in second.output()
                # A proxy it does not trust: the forwarded addresses are ignored.
                assert sign_in_statuses(second.url, "203.0.113.9", 1) == [401]
                assert sign_in_statuses(second.url, "203.0.113.10", 2) == [401, 429]
                assert "secret_key" not in second.output()
                response = httpx.post(
                    f"{second.url}/api/v1/payment/mpesa-stk-push/",
                    json={"phone_number": "254712345678", "amount": 120},
                    headers=auth,
                    timeout=30,
                    verify=SHARED_SSL_CONTEXT,
                )
                assert response.status_code == 200, response.text
                assert response.json()["invoice"]["value"] == "120.00"
            stdout, stderr = finish(stk_push)
        finally:
            if stk_push.poll() is None:
                stk_push.kill()
                stk_push.wait()
        assert stk_push.returncode == 0, stdout + stderr
        assert "Paid" in stdout and "KES 150.00" in stdout
    assert serve.process is not None and serve.process.poll() is not None
    assert second.process is not None and second.process.poll() is not None
    [(count,)] = db_rows(empty_db_url, select(func.count()).select_from(Business))
    assert count == 1


def test_webhook_add_list_test_remove(db_url, callback_receiver):
    business_id, _, _ = existing_merchant(db_url)
    env = cli_env(db_url)
    added = run_cli(
        ["webhook", "add", business_id, callback_receiver.url + "/hooks", "--challenge", "c-1"], env
    )
    assert added.returncode == 0, added.stderr
    webhook_id = re.search(r"id: (\S+)", added.stdout).group(1)
    secret = re.search(r"signing_secret: (whsec_\S+)", added.stdout).group(1)
    listed = run_cli(["webhook", "list", business_id], env)
    assert webhook_id in listed.stdout and "collection_event" in listed.stdout
    tested = run_cli(["webhook", "test", webhook_id], env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "delivered" in tested.stdout
    [request] = callback_receiver.wait_for("/hooks")
    headers = {name.lower(): value for name, value in request.headers.items()}
    body = Webhook(secret).verify(request.body.decode(), headers)
    assert body["topic"] == "test_event" and body["challenge"] == "c-1"
    callback_receiver.status = 500
    failing = run_cli(["webhook", "test", webhook_id], env)
    assert failing.returncode == 1 and "HTTP 500" in failing.stderr
    assert run_cli(["webhook", "remove", webhook_id], env).returncode == 0
    assert webhook_id not in run_cli(["webhook", "list", business_id], env).stdout
    assert run_cli(["webhook", "test", webhook_id], env).returncode == 1


def test_serve_with_workers_refuses_the_embedded_simulator(tmp_path):
    result = run_cli(
        ["serve", "--workers", "2"],
        cli_env(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", PESAGATE_SIMULATOR="on"),
    )
    assert result.returncode == 2
    assert "PESAGATE_SIMULATOR=off" in result.stderr
    assert not (tmp_path / "p.db").exists()  # refused before touching anything


def test_serve_with_two_workers_takes_payments(db_url):
    """Two API processes on one port, the simulator standalone: a payment completes through
    whichever process answers, and each process is a child of `pesagate serve`."""
    simulator = UvicornThread(
        create_simulator_app(SimulatorSettings(delay_min_s=0.0, delay_max_s=0.0))
    ).__enter__()
    _, _, secret_key = existing_merchant(db_url)
    try:
        extra = {"PESAGATE_SIMULATOR": "off", "PESAGATE_MPESA_BASE_URL": simulator.url}
        with ServeProcess(db_url, args=("--workers", "2"), **extra) as serve:
            assert serve.process is not None
            children = Path(f"/proc/{serve.process.pid}/task/{serve.process.pid}/children")
            wait_until(lambda: len(children.read_text().split()) >= 2, what="two workers")
            auth = {"Authorization": f"Bearer {secret_key}"}
            invoice_ids = []
            for phone in ("254712345601", "254712345602", "254712345603"):
                response = httpx.post(
                    f"{serve.url}/api/v1/payment/mpesa-stk-push/",
                    json={"phone_number": phone, "amount": 100},
                    headers=auth,
                    timeout=30,
                    verify=SHARED_SSL_CONTEXT,
                )
                assert response.status_code == 200, response.text
                invoice_ids.append(response.json()["invoice"]["invoice_id"])

            def states() -> list[str] | None:
                found = [
                    httpx.post(
                        f"{serve.url}/api/v1/payment/status/",
                        json={"invoice_id": invoice_id},
                        headers=auth,
                        timeout=30,
                        verify=SHARED_SSL_CONTEXT,
                    ).json()["invoice"]["state"]
                    for invoice_id in invoice_ids
                ]
                return found if set(found) <= {"COMPLETE", "FAILED"} else None

            assert wait_until(states, what="the payments to settle") == ["COMPLETE"] * 3
    finally:
        simulator.__exit__()


def test_serve_on_another_port_takes_payments_without_a_public_url(db_url):
    """`pesagate serve --port P` with PESAGATE_PUBLIC_URL unset: the public URL follows the
    port, so the embedded simulator is reached and calls back, and the banner prints the URLs
    that work."""
    serve = ServeProcess(db_url)
    del serve.env["PESAGATE_PUBLIC_URL"]
    with serve:
        output = serve.output()
        assert f"Daraja simulator: {serve.url}/sim/" in output
        assert f"curl -s {serve.url}/api/v1/payment/mpesa-stk-push/" in output
        auth = {"Authorization": f"Bearer {serve.field('secret_key')}"}
        invoice_id = push_through(serve, serve.field("secret_key"))["invoice"]["invoice_id"]

        def settled() -> dict | None:
            invoice = httpx.post(
                f"{serve.url}/api/v1/payment/status/",
                json={"invoice_id": invoice_id},
                headers=auth,
                timeout=30,
                verify=SHARED_SSL_CONTEXT,
            ).json()["invoice"]
            return invoice if invoice["state"] in ("COMPLETE", "FAILED") else None

        invoice = wait_until(settled, what="the invoice to settle")
        assert (invoice["state"], invoice["failed_code"]) == ("COMPLETE", None)
        assert invoice["host"] == serve.url
        [transaction] = httpx.get(
            f"{serve.url}/sim/control/transactions", verify=SHARED_SSL_CONTEXT
        ).json()
        assert transaction["callback_url"].startswith(f"{serve.url}/callbacks/stk/")


def test_user_create_reads_the_password_from_stdin_and_the_user_signs_in(db_url):
    business_id, _, _ = existing_merchant(db_url, "Mama Mboga Store")
    args = ["user", "create", "Dev@Shop.example", "--business", business_id, "--role"]
    created = run_cli(
        [*args, "developer", "--password-stdin"],
        cli_env(db_url),
        input="a long enough password\n",
    )
    assert created.returncode == 0, created.stderr
    assert f"dev@shop.example is developer of Mama Mboga Store ({business_id})" in created.stdout
    short = run_cli(
        [*args[:2], "x@shop.example", *args[3:], "viewer", "--password-stdin"],
        cli_env(db_url),
        input="short\n",
    )
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    unknown = run_cli(
        [
            "user",
            "create",
            "y@shop.example",
            "--business",
            "BIZ_NOPE0000",
            "--role",
            "owner",
            "--password-stdin",
        ],
        cli_env(db_url),
    )
    assert unknown.returncode == 2
    (stored,) = db_rows(db_url, select(User.password_hash).where(User.email == "dev@shop.example"))
    assert stored[0].startswith("$argon2id$")  # never the password itself
    assert asyncio.run(sign_in(db_url, "dev@shop.example", "a long enough password"))
    revoked = run_cli(["user", "revoke-sessions", "dev@shop.example"], cli_env(db_url))
    assert revoked.returncode == 0 and "1 session(s) revoked" in revoked.stdout


async def sign_in(db_url: str, email: str, password: str) -> str:
    """A dashboard session for the password, through the accounts service."""
    db = Database(db_url)
    try:
        new = await accounts.sign_in(db, email, password, 60.0, accounts.Throttle(5, 60.0))
        return new.token
    finally:
        await db.dispose()
