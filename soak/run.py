"""`make soak`: payments under faults and process kills, checked against M-Pesa's ground truth.

PostgreSQL; two API processes (`pesagate serve --no-worker`), one `pesagate worker`, a
standalone simulator with a seeded fault profile, and a webhook receiver that fails 20% of
requests. N payments go through the kulmipay SDK at concurrency 32 while a random gateway
process is SIGKILLed and restarted every ~20 s. Then, at quiescence, it checks: every invoice
final; COMPLETE = what the simulator paid, with no exemption (pushes whose CheckoutRequestID was
never learnt are settled from M-Pesa's statement); `pesagate ledger verify` clean; every
invoice's final state delivered with a valid signature; no 5xx outside the kill windows. Exit 1
on a violation.
"""

import argparse
import asyncio
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from kulmipay import APIService
from rich.console import Console
from rich.table import Table
from standardwebhooks import Webhook

from bench.harness import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
    wait_http,
)

PG_ADMIN = os.environ.get(
    "PESAGATE_SOAK_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
FAULTS = {
    "lost_callback": 0.10,
    "duplicate_callback": 0.10,
    "early_callback": 0.05,
    "late_callback": 0.05,
    "push_error": 0.03,
    "push_response_lost": 0.03,
    "query_pending": 0.30,
}
console = Console()


@dataclass
class Managed:
    """A gateway process the killer may SIGKILL and restart."""

    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str | None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pesagate", *self.args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if self.health_url:
            wait_http(self.health_url)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Outcomes:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: int = 0
    client_errors: int = 0
    server_errors: list[float] = field(default_factory=list)  # monotonic times of 5xx
    connection_errors: int = 0
    kills: list[tuple[str, float, float]] = field(default_factory=list)  # name, killed, back


def pesagate(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-m", "pesagate", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def pay(api_urls: list[str], keys: dict[str, str], n: int, outcomes: Outcomes) -> None:
    service = APIService(
        token=keys["secret_key"], publishable_key=keys["public_key"], base_url=api_urls[n % 2]
    )
    phone = f"2547{20_000_000 + n:08d}"
    try:
        service.collect.mpesa_stk_push(
            phone_number=phone, amount=random.randint(10, 5000), api_ref=f"soak-{n}"
        )
        with outcomes.lock:
            outcomes.ok += 1
    except Exception as exc:  # the SDK raises its own exceptions, requests' for the network
        name = type(exc).__name__
        with outcomes.lock:
            if name == "KulmiPayServerError":
                outcomes.server_errors.append(time.monotonic())
            elif name.startswith("KulmiPay"):
                outcomes.client_errors += 1
            else:
                outcomes.connection_errors += 1


def killer(
    processes: list[Managed], every_s: float, stop: threading.Event, outcomes: Outcomes
) -> None:
    while not stop.wait(random.uniform(every_s * 0.75, every_s * 1.25)):
        victim = random.choice(processes)
        killed = time.monotonic()
        victim.kill()
        victim.start()
        outcomes.kills.append((victim.name, killed, time.monotonic()))
        console.print(f"  killed and restarted {victim.name}")


def wait_quiet(db_url: str, timeout_s: float) -> dict[str, int]:
    async def counts() -> dict[str, int]:
        connection = await asyncpg.connect(db_url.replace("+asyncpg", ""))
        try:
            rows = await connection.fetch(
                "SELECT 'invoice:' || state AS k, count(*) FROM invoices GROUP BY state"
                " UNION ALL SELECT 'event:' || status, count(*) FROM webhook_events GROUP BY status"
            )
            return {row["k"]: row["count"] for row in rows}
        finally:
            await connection.close()

    deadline = time.monotonic() + timeout_s
    while True:
        state = asyncio.run(counts())
        busy = sum(
            v
            for k, v in state.items()
            if k in ("invoice:PENDING", "invoice:PROCESSING", "event:PENDING", "event:PROCESSING")
        )
        if busy == 0 or time.monotonic() > deadline:
            return state
        time.sleep(1)


def invoices(db_url: str) -> dict[str, tuple[str, str | None, bool]]:
    """Invoice id -> (state, failed_code, whether its CheckoutRequestID is known)."""

    async def fetch() -> dict[str, tuple[str, str | None, bool]]:
        connection = await asyncpg.connect(db_url.replace("+asyncpg", ""))
        try:
            rows = await connection.fetch(
                "SELECT invoice_id, state, failed_code, checkout_request_id IS NOT NULL AS known"
                " FROM invoices"
            )
            return {r["invoice_id"]: (r["state"], r["failed_code"], r["known"]) for r in rows}
        finally:
            await connection.close()

    return asyncio.run(fetch())


def known_checkouts(db_url: str) -> set[str]:
    async def fetch() -> set[str]:
        connection = await asyncpg.connect(db_url.replace("+asyncpg", ""))
        try:
            rows = await connection.fetch(
                "SELECT checkout_request_id FROM invoices WHERE checkout_request_id IS NOT NULL"
            )
            return {row["checkout_request_id"] for row in rows}
        finally:
            await connection.close()

    return asyncio.run(fetch())


def delivered_states(log: Path, secret: str) -> tuple[dict[str, set[str]], int]:
    """Invoice id -> states delivered with a valid signature; and the count of bad ones.

    The signature is checked as the receiver would have checked it on arrival: the HMAC over
    id, timestamp and body, and a timestamp within 5 minutes of the arrival (checking later
    with the library would call every older delivery stale)."""
    signer = Webhook(secret)
    states: dict[str, set[str]] = {}
    bad = 0
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        headers, body = entry["headers"], entry["body"]
        sent_at = int(headers["webhook-timestamp"])
        expected = signer.sign(headers["webhook-id"], datetime.fromtimestamp(sent_at, UTC), body)
        offered = headers["webhook-signature"].split(" ")
        fresh = abs(entry["received_at"] - sent_at) <= 300
        if not fresh or not any(hmac.compare_digest(expected, sig) for sig in offered):
            bad += 1
            continue
        payload = json.loads(body)
        if "invoice_id" in payload:
            states.setdefault(payload["invoice_id"], set()).add(payload["state"])
    return states, bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=200 if os.environ.get("QUICK") else 2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--kill-every-s", type=float, default=5.0 if os.environ.get("QUICK") else 20.0
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--victims", default="api_a,api_b,worker", help="processes to kill")
    args = parser.parse_args()
    # Stopped from outside: still run the cleanup below (children, database).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    random.seed(args.seed)
    db_url = create_postgres_database(PG_ADMIN, "pesagate_soak")
    workdir = Path(tempfile.mkdtemp(prefix="pesagate-soak-"))
    receiver_log = workdir / "received.jsonl"
    receiver_log.touch()
    ports = {name: free_port() for name in ("sim", "receiver", "api_a", "api_b", "balancer")}
    public_url = f"http://127.0.0.1:{ports['balancer']}"
    base_env = {**os.environ, "PESAGATE_DATABASE_URL": db_url, "PESAGATE_LOG_LEVEL": "WARNING"}
    gateway_env = {
        **base_env,
        "PESAGATE_PUBLIC_URL": public_url,  # Daraja and clients reach the nodes through it
        "PESAGATE_SIMULATOR": "off",
        "PESAGATE_MPESA_BASE_URL": f"http://127.0.0.1:{ports['sim']}",
        "PESAGATE_STK_PROMPT_TTL_S": "5",
        "PESAGATE_RECONCILE_GRACE_S": "2",
        "PESAGATE_RECONCILE_BACKOFF_S": "1",
        # Long enough for a worker far behind; short enough that CI's quick run ends soon.
        "PESAGATE_RECONCILE_MAX_S": "90" if os.environ.get("QUICK") else "240",
        "PESAGATE_WEBHOOK_BACKOFF_S": "0.5",
        "PESAGATE_WEBHOOK_MAX_ATTEMPTS": "8",
        "PESAGATE_WEBHOOK_TIMEOUT_S": "5",
        "PESAGATE_WORKER_LEASE_S": "10",
        "PESAGATE_WORKER_POLL_S": "0.2",
    }
    helpers: list[subprocess.Popen[bytes]] = []
    managed = [
        Managed(
            "api_a",
            ["serve", "--no-worker", "--port", str(ports["api_a"])],
            gateway_env,
            f"http://127.0.0.1:{ports['api_a']}/healthz",
        ),
        Managed(
            "api_b",
            ["serve", "--no-worker", "--port", str(ports["api_b"])],
            gateway_env,
            f"http://127.0.0.1:{ports['api_b']}/healthz",
        ),
        Managed("worker", ["worker"], gateway_env, None),
    ]
    started = time.monotonic()
    try:
        pesagate(["migrate"], base_env)
        keys = json.loads(pesagate(["merchant", "create", "Soak Shop", "--json"], base_env))
        helpers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pesagate",
                    "simulator",
                    "--port",
                    str(ports["sim"]),
                    "--seed",
                    str(args.seed),
                    "--delay-s",
                    "0-1",
                    "--prompt-ttl-s",
                    "5",
                ],
                env={**base_env, "PESAGATE_SIM_LATE_CALLBACK_S": "4"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_http(f"http://127.0.0.1:{ports['sim']}/control/faults")
        httpx.post(
            f"http://127.0.0.1:{ports['sim']}/control/faults", json={"seed": args.seed, **FAULTS}
        ).raise_for_status()
        helpers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "soak.receiver:app",
                    "--port",
                    str(ports["receiver"]),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env={
                    **base_env,
                    "SOAK_RECEIVER_LOG": str(receiver_log),
                    "SOAK_SEED": str(args.seed),
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        backends = ",".join(f"http://127.0.0.1:{ports[name]}" for name in ("api_a", "api_b"))
        helpers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "soak.balancer:app",
                    "--port",
                    str(ports["balancer"]),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env={**base_env, "SOAK_BACKENDS": backends},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        for process in managed:
            process.start()
        api_urls = [f"{public_url}/api/v1"] * 2
        headers = {"Authorization": f"Bearer {keys['secret_key']}"}
        hook = httpx.post(
            f"{api_urls[0]}/webhooks/",
            headers=headers,
            json={"endpoint": f"http://127.0.0.1:{ports['receiver']}/hook", "challenge": "soak"},
        ).json()
        console.print(
            f"[bold]soak[/]: {args.payments} payments at concurrency {args.concurrency},"
            f" faults {FAULTS}"
        )
        outcomes = Outcomes()
        stop = threading.Event()
        victims = [process for process in managed if process.name in args.victims.split(",")]
        kill_thread = threading.Thread(
            target=killer, args=(victims, args.kill_every_s, stop, outcomes), daemon=True
        )
        kill_thread.start()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda n: pay(api_urls, keys, n, outcomes), range(args.payments)))
        stop.set()
        kill_thread.join()
        load_s = time.monotonic() - started
        console.print(f"load done in {load_s:.0f} s; waiting for quiescence")
        state = wait_quiet(db_url, 600)
        failed_events = httpx.get(
            f"{api_urls[0]}/webhooks/events/",
            headers=headers,
            params={"status": "FAILED", "page_size": 500},
        ).json()["results"]
        for event in failed_events:
            httpx.post(f"{api_urls[0]}/webhooks/events/{event['id']}/replay/", headers=headers)
        state = wait_quiet(db_url, 120)
        report = check(
            db_url,
            ports,
            receiver_log,
            hook["signing_secret"],
            outcomes,
            base_env,
            state,
            len(failed_events),
        )
    finally:
        for process in managed:
            process.stop()
        for helper in helpers:
            helper.terminate()
            helper.wait()
        drop_postgres_database(PG_ADMIN, db_url)
    sys.exit(0 if report else 1)


def check(
    db_url: str,
    ports: dict[str, int],
    log: Path,
    secret: str,
    outcomes: Outcomes,
    env: dict[str, str],
    state: dict[str, int],
    replayed: int,
) -> bool:
    truth = httpx.get(f"http://127.0.0.1:{ports['sim']}/control/transactions", timeout=60).json()
    paid = {t["account_reference"] for t in truth if t["result_code"] == 0}
    stored = invoices(db_url)
    checkouts = known_checkouts(db_url)
    complete = {invoice for invoice, (s, _, _) in stored.items() if s == "COMPLETE"}
    # A node killed after Daraja accepted a push but before it stored the answer, or a lost push
    # response, whose callback never reached a live node either: the gateway never learnt the
    # CheckoutRequestID, and only M-Pesa's statement (Pull Transactions) could complete it.
    from_statement = {invoice for invoice in complete if not stored[invoice][2]}
    not_final = [i for i, (s, _, _) in stored.items() if s not in ("COMPLETE", "FAILED")]
    verify = subprocess.run(
        [sys.executable, "-m", "pesagate", "ledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
    )
    delivered, bad_signatures = delivered_states(log, secret)
    undelivered = [i for i, (s, _, _) in stored.items() if s not in delivered.get(i, set())]
    windows = [(killed - 1, back + 5) for _, killed, back in outcomes.kills]
    stray_5xx = [t for t in outcomes.server_errors if not any(a <= t <= b for a, b in windows)]
    rows = [
        ("invoices", len(stored), True),
        ("not final", len(not_final), not not_final),
        ("paid by M-Pesa", len(paid), True),
        ("COMPLETE", len(complete), True),
        ("COMPLETE but not paid", len(complete - paid), not (complete - paid)),
        ("paid but not COMPLETE", len(paid - complete), not (paid - complete)),
        ("COMPLETE from the statement (no CheckoutRequestID)", len(from_statement), True),
        ("ledger verify exit code", verify.returncode, verify.returncode == 0),
        ("final state not delivered", len(undelivered), not undelivered),
        ("bad signatures", bad_signatures, bad_signatures == 0),
        ("FAILED events replayed", replayed, True),
        ("kills", len(outcomes.kills), True),
        ("5xx outside kill windows", len(stray_5xx), not stray_5xx),
        ("5xx during kills", len(outcomes.server_errors) - len(stray_5xx), True),
        ("connection errors (kills)", outcomes.connection_errors, True),
        ("4xx answers", outcomes.client_errors, True),
    ]
    table = Table("check", "value", "ok")
    for name, value, ok in rows:
        table.add_row(name, str(value), "[green]yes[/]" if ok else "[red]NO[/]")
    console.print(table)
    console.print(f"database at the end: {state}")
    if verify.returncode != 0:
        console.print(verify.stdout)
    by_reference = {t["account_reference"]: t for t in truth}
    for invoice in sorted(paid - complete):
        t = by_reference[invoice]
        console.print(
            f"  paid but {stored.get(invoice, ('missing', None, False))[:2]}: {invoice}"
            f" callbacks sent/answered {t['callbacks_sent']}/{t['callbacks_answered']},"
            f" queries {t['queries']},"
            f" CheckoutRequestID known: {t['checkout_request_id'] in checkouts}"
        )
    violations = [name for name, _, ok in rows if not ok]
    console.print(
        "[bold green]no violations[/]"
        if not violations
        else f"[bold red]violations: {violations}[/]"
    )
    return not violations


if __name__ == "__main__":
    main()
