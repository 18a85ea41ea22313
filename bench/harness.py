"""Benchmark plumbing: processes, databases, seeding, wrk, and RSS sampling.

Everything talks to 127.0.0.1 only. Processes are started with the project's own commands
(`pesagate simulator`, `uvicorn pesagate.app:from_env --factory`), as an operator would.
"""

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import insert, select

from pesagate import migrate
from pesagate.db import Database
from pesagate.kit import ids
from pesagate.kit.clock import utc_now
from pesagate.models import Customer, Environment, Invoice, InvoiceState, Tariff
from pesagate.services import create_merchant

HERE = Path(__file__).parent
PG_ADMIN = os.environ.get(
    "PESAGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WRK_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, up_url: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if up_url:
            wait_http(up_url)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------------------------- wrk
@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non2xx: int


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install wrk (make bench installs it)")
    return wrk


def wrk(
    url: str,
    script: str,
    seconds: float,
    connections: int,
    env: dict[str, str] | None = None,
    threads: int = 2,
) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write((HERE / "lua" / script).read_text() + WRK_DONE)
        path = handle.name
    try:
        result = subprocess.run(
            [
                ensure_wrk(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                path,
                url,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {}), "BENCH_THREADS": str(threads)},
            check=True,
        )
    finally:
        os.unlink(path)
    line = next(out for out in result.stdout.splitlines() if out.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=data["errors"],
        non2xx=data["non2xx"],
    )


def wrk_each(
    urls: list[str], script: str, seconds: float, connections: int, envs: list[dict[str, str]]
) -> WrkResult:
    """One wrk per URL, all at once (as a balancer spreading clients evenly over nodes would);
    the rates add up, and the latencies are the worst of them."""
    with ThreadPoolExecutor(len(urls)) as pool:
        results = list(
            pool.map(lambda url, env: wrk(url, script, seconds, connections, env), urls, envs)
        )
    return WrkResult(
        rps=sum(r.rps for r in results),
        p50_ms=max(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        non2xx=sum(r.non2xx for r in results),
    )


# ---------------------------------------------------------------------------------- RSS
@dataclass
class RssSampler:
    """Peak resident memory of a process tree (the gateway and its uvicorn workers)."""

    root_pid: int
    peak_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "RssSampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(pid) for pid in _tree(self.root_pid)))


def _tree(root: int) -> list[int]:
    pids = [root]
    for pid in pids:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(child) for child in children)
    return pids


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------------------------- nodes
CGROUP_ROOT = Path("/sys/fs/cgroup")
CAP_PERIOD_US = 10_000  # short, so that a capped process waits at most a few ms at a time


class CpuCapUnavailable(RuntimeError):
    """No writable cgroup with a CPU controller (not root, or no cgroup file system)."""


@contextmanager
def cpu_capped(pids: list[int], cores: float) -> Iterator[None]:
    """Each process in a cgroup of its own that allows it `cores` of CPU time: nodes of a
    fixed size, as containers with a CPU limit are. On a machine whose few cores also run
    PostgreSQL, the simulator and wrk, this is how a second node can bring capacity of its
    own, which an uncapped second process cannot."""
    v2 = "cpu" in _read(CGROUP_ROOT / "cgroup.controllers")
    base = CGROUP_ROOT if v2 else CGROUP_ROOT / "cpu"
    quota = int(cores * CAP_PERIOD_US)
    groups = []
    try:
        for pid in pids:
            group = base / f"pesagate-bench-{pid}"
            group.mkdir()
            groups.append(group)
            if v2:
                (group / "cpu.max").write_text(f"{quota} {CAP_PERIOD_US}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(CAP_PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            (group / "cgroup.procs").write_text(str(pid))
    except OSError as error:
        _remove_groups(base, groups)
        raise CpuCapUnavailable(f"cannot cap CPU with cgroups under {base}: {error}") from error
    try:
        yield
    finally:
        _remove_groups(base, groups)


def _remove_groups(base: Path, groups: list[Path]) -> None:
    for group in groups:
        for pid in _read(group / "cgroup.procs").split():
            with suppress(OSError):  # already gone
                (base / "cgroup.procs").write_text(pid)
        group.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------- databases
def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        path = workdir / f"bench-{secrets.token_hex(4)}.db"
        return f"sqlite+aiosqlite:///{path}"
    return create_postgres_database(PG_ADMIN, "pesagate_bench")


def drop_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    drop_postgres_database(PG_ADMIN, url)


def create_postgres_database(admin_url: str, prefix: str) -> str:
    """A new database `<prefix>_<random>` on the server of `admin_url`; its asyncpg URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    base = admin_url.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_postgres_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@dataclass
class Merchant:
    business_pk: int
    wallet_pk: int
    secret_key: str
    wallet_id: str  # the settlement wallet's public id


async def prepare(url: str) -> Merchant:
    await migrate.upgrade(url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            new = await create_merchant(session, "Bench Shop", Environment.SANDBOX)
            wallet = new.settlement_wallet
            return Merchant(new.business.id, wallet.id, new.keys.secret_key, wallet.wallet_id)
    finally:
        await db.dispose()


async def seed_invoices(
    url: str, merchant: Merchant, count: int, state: InvoiceState, host: str
) -> list[tuple[str, str, str, str]]:
    """Bulk-insert `count` invoices; returns (invoice_id, token, checkout_request_id, phone)."""
    db = Database(url)
    rows: list[tuple[str, str, str, str]] = []
    phone = f"2547{secrets.randbelow(10**8):08d}"
    try:
        async with db.transaction() as session:
            customer = Customer(
                customer_id=ids.customer_id(), business_id=merchant.business_pk, phone_number=phone
            )
            session.add(customer)
            await session.flush()
            customer_pk = customer.id
        batch: list[dict[str, Any]] = []
        for _ in range(count):
            invoice_id, token = ids.invoice_id(), ids.callback_token()
            checkout = f"ws_CO_{secrets.token_hex(12)}"
            rows.append((invoice_id, token, checkout, phone))
            now = utc_now()
            batch.append(
                {
                    "invoice_id": invoice_id,
                    "session_id": ids.session_id(),
                    "business_id": merchant.business_pk,
                    "customer_id": customer_pk,
                    "wallet_id": merchant.wallet_pk,
                    "environment": "sandbox",
                    "state": state.value,
                    "provider": "M-PESA",
                    "currency": "KES",
                    "amount_minor": 10_000,
                    "value_minor": 10_000,
                    "charges_minor": 220,
                    "net_amount_minor": 9_780,
                    "mobile_tarrif": Tariff.BUSINESS_PAYS.value,
                    "account": phone,
                    "api_ref": "seed",
                    "retry_count": 0,
                    "callback_token": token,
                    "checkout_request_id": checkout,
                    "host": host,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if len(batch) == 10_000:
                await _insert(db, batch)
                batch = []
        if batch:
            await _insert(db, batch)
    finally:
        await db.dispose()
    return rows


async def _insert(db: Database, batch: list[dict[str, Any]]) -> None:
    async with db.transaction() as session:
        await session.execute(insert(Invoice), batch)


async def count_states(url: str) -> dict[str, int]:
    from sqlalchemy import func

    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(Invoice.state, func.count()).group_by(Invoice.state)
            )
            return {state: count for state, count in rows}
    finally:
        await db.dispose()


def seed_for_paths(db_url: str, workdir: Path, url: str, invoices: int) -> dict[str, str]:
    """A merchant and `invoices` PROCESSING invoices; the environment of the push, status and
    callback wrk scripts: the secret key, the first 500 invoice ids to read, and one success
    callback for each of the other invoices."""
    merchant = asyncio.run(prepare(db_url))
    rows = asyncio.run(seed_invoices(db_url, merchant, invoices, InvoiceState.PROCESSING, url))
    callbacks = workdir / "callbacks.txt"
    callbacks.write_text("".join(f"{t} {c} {p} 100.00\n" for _, t, c, p in rows[500:]))
    return {
        "BENCH_SECRET_KEY": merchant.secret_key,
        "BENCH_INVOICE_IDS": ",".join(row[0] for row in rows[:500]),
        "BENCH_CALLBACKS_FILE": str(callbacks),
    }
