"""`make bench`: the gateway against the ceiling of its own stack, side by side, in one run.

For each database (SQLite, PostgreSQL) and process count (1, cores): the ceiling (a bare
FastAPI JSON route), STK push (push path only: the simulator accepts without callbacks),
status, callback ingestion, end-to-end completions (push, callback, COMPLETE, webhook
delivered), webhook deliveries, and peak RSS; then status and push with 1,000 and 1,000,000
invoices already stored; then pesagate and a real Django peer (`bench/peer/`) side by side, in
interleaved rounds. Results: bench/results/latest.json and BENCHMARKS.md.
`--quick`: SQLite, 1 process, short runs (about 4 minutes).
"""

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench import peer
from bench.harness import (
    HERE,
    CpuCapUnavailable,
    Merchant,
    RssSampler,
    WrkResult,
    cpu_capped,
    drop_database,
    free_port,
    fresh_database,
    prepare,
    process,
    seed_invoices,
    wrk,
    wrk_each,
)
from bench.paced import paced_stk_push
from bench.report import nodes_report, versus_peer_report, write_report
from pesagate.kit.runtime import EVENT_LOOP
from pesagate.models import InvoiceState

CONNECTIONS = 32
E2E_SECONDS = 5
# Side by side with the peer: as the issue that set the targets measured it (wrk -t1 -c16).
PEER_CONNECTIONS = 16
PEER_PATHS = ("stk_push", "status", "callback")
# wrk stops by closing its connections; requests already inside the gateway still run to
# completion. Each measurement waits for that tail so it does not pay for the previous one.
SETTLE_S = 3.0
# One node's CPU in the nodes run: two such nodes, with PostgreSQL, the simulator and wrk beside
# them, keep a two-core machine below full (a push costs the machine ~1.8x the gateway's CPU).
NODE_CORES = 0.4


class Bench:
    def __init__(self, quick: bool, workdir: Path) -> None:
        self.quick = quick
        self.seconds = 4 if quick else 8
        self.workdir = workdir
        self.sim_port = free_port()
        self.receiver_port = free_port()
        self._phone_base = 10

    def phones(self) -> dict[str, str]:
        """A fresh block of phone numbers for one push run: the simulator is shared by every
        run and keeps prompts open (no callbacks), and refuses a second push to a number."""
        base, self._phone_base = self._phone_base, self._phone_base + 2
        assert base < 99, "out of phone number blocks"
        return {"BENCH_PHONE_BASE": str(base)}

    # ------------------------------------------------------------------ components
    def simulator(self) -> Any:
        return process(
            [
                sys.executable,
                "-m",
                "pesagate",
                "simulator",
                "--port",
                str(self.sim_port),
                "--delay-s",
                "0",
                "--prompt-ttl-s",
                "3600",
            ],
            env={"PESAGATE_LOG_LEVEL": "WARNING"},
            up_url=f"http://127.0.0.1:{self.sim_port}/control/faults",
        )

    def receiver(self) -> Any:
        return process(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(HERE),
                "receiver:app",
                "--port",
                str(self.receiver_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            up_url=f"http://127.0.0.1:{self.receiver_port}/",
        )

    def gateway(self, db_url: str, processes: int, port: int) -> Any:
        env = {
            "PESAGATE_DATABASE_URL": db_url,
            "PESAGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PESAGATE_SIMULATOR": "off",
            "PESAGATE_MPESA_BASE_URL": f"http://127.0.0.1:{self.sim_port}",
            "PESAGATE_LOG_LEVEL": "WARNING",
            "PESAGATE_STK_PROMPT_TTL_S": "3600",  # no reconciliation during a run
            "PESAGATE_WORKER_POLL_S": "0.05",
            # Throughput is measured with one key (and few phones): no prompt limits.
            "PESAGATE_PROMPT_LIMIT_PER_KEY": "",
            "PESAGATE_PROMPT_LIMIT_PER_PHONE": "",
        }
        return process(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "pesagate.app:from_env",
                "--factory",
                "--port",
                str(port),
                "--workers",
                str(processes),
                "--log-level",
                "warning",
                "--no-access-log",
                "--loop",
                os.environ.get("BENCH_LOOP", EVENT_LOOP),  # as `pesagate serve` runs
            ],
            env=env,
            up_url=f"http://127.0.0.1:{port}/healthz",
        )

    def ceiling(self, processes: int) -> WrkResult:
        port = free_port()
        with process(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(HERE),
                "ceiling:app",
                "--port",
                str(port),
                "--workers",
                str(processes),
                "--log-level",
                "warning",
                "--no-access-log",
                "--loop",
                os.environ.get("BENCH_LOOP", EVENT_LOOP),
            ],
            up_url=f"http://127.0.0.1:{port}/docs",
        ):
            return wrk(f"http://127.0.0.1:{port}", "ceiling.lua", self.seconds, CONNECTIONS)

    def sim_faults(self, **faults: float) -> None:
        httpx.post(
            f"http://127.0.0.1:{self.sim_port}/control/faults", json=faults
        ).raise_for_status()

    # ------------------------------------------------------------------ one configuration
    def run_config(self, db: str, processes: int) -> dict[str, Any]:
        print(f"== {db}, {processes} process(es)", flush=True)
        ceiling = self.ceiling(processes)
        db_url = fresh_database(db, self.workdir)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            merchant = asyncio.run(prepare(db_url))
            env = {"BENCH_SECRET_KEY": merchant.secret_key}
            status_ids = [
                row[0]
                for row in asyncio.run(
                    seed_invoices(db_url, merchant, 1_000, InvoiceState.COMPLETE, url)
                )
            ]
            callback_rows = asyncio.run(
                seed_invoices(
                    db_url,
                    merchant,
                    60_000 if not self.quick else 15_000,
                    InvoiceState.PROCESSING,
                    url,
                )
            )
            callbacks_file = self.workdir / "callbacks.txt"
            callbacks_file.write_text(
                "".join(f"{t} {c} {p} 100.00\n" for _, t, c, p in callback_rows)
            )
            with self.gateway(db_url, processes, port) as gateway, RssSampler(gateway.pid) as rss:
                self.sim_faults(lost_callback=1.0)
                push = wrk(url, "stk_push.lua", self.seconds, CONNECTIONS, env | self.phones())
                time.sleep(SETTLE_S)
                half_peak = paced_stk_push(
                    url,
                    merchant.secret_key,
                    max(push.rps / 2, 1.0),
                    self.seconds,
                    self.phones()["BENCH_PHONE_BASE"],
                )
                status = wrk(
                    url,
                    "status.lua",
                    self.seconds,
                    CONNECTIONS,
                    {**env, "BENCH_INVOICE_IDS": ",".join(status_ids[:500])},
                )
                time.sleep(SETTLE_S)
                callback = wrk(
                    url,
                    "callback.lua",
                    self.seconds,
                    CONNECTIONS,
                    {"BENCH_CALLBACKS_FILE": str(callbacks_file)},
                )
                time.sleep(SETTLE_S)
                e2e, webhooks, undelivered = self.end_to_end(url, merchant, env)
            return {
                "db": db,
                "processes": processes,
                "ceiling_rps": round(ceiling.rps, 1),
                "stk_push_rps": round(push.rps, 1),
                "stk_push_p50_ms": round(push.p50_ms, 2),
                "stk_push_p99_ms": round(push.p99_ms, 2),
                "stk_push_half_peak_rps": round(half_peak.achieved_rps, 1),
                "stk_push_half_peak_p50_ms": round(half_peak.p50_ms, 2),
                "stk_push_half_peak_p99_ms": round(half_peak.p99_ms, 2),
                "status_rps": round(status.rps, 1),
                "callback_rps": round(callback.rps, 1),
                "e2e_per_s": round(e2e, 1),
                "webhook_per_s": round(webhooks, 1),
                "e2e_callbacks_undelivered": undelivered,
                "rss_mb": round(rss.peak_kb / 1024, 1),
                "errors": {
                    "push": push.non2xx + push.errors,
                    "push_half_peak": half_peak.errors,
                    "status": status.non2xx + status.errors,
                    "callback": callback.non2xx + callback.errors,
                },
            }
        finally:
            drop_database(db_url)

    def end_to_end(
        self, url: str, merchant: Merchant, env: dict[str, str]
    ) -> tuple[float, float, int]:
        """Pushes for E2E_SECONDS with callbacks on and a webhook endpoint; then the rate at
        which invoices reached COMPLETE and webhooks were delivered, start to last, and how
        many callbacks the simulator dropped because the gateway did not answer in time (as
        Daraja would: reconciliation settles those, but not within a run, so the wait for
        them runs out and the rates drop)."""
        with httpx.Client(
            base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {merchant.secret_key}"}
        ) as client:
            client.post(
                "/webhooks/",
                json={
                    "endpoint": f"http://127.0.0.1:{self.receiver_port}/hook",
                    "challenge": "bench",
                },
            ).raise_for_status()
            self.sim_faults()
            started = time.monotonic()
            # Earlier runs left invoices that never complete (no callbacks): count only these.
            e2e_env = env | self.phones() | {"BENCH_API_REF": "e2e"}
            pushes = wrk(url, "stk_push.lua", E2E_SECONDS, CONNECTIONS, e2e_env)
            completed = delivered = 0
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                completed = client.get(
                    "/invoices/", params={"state": "COMPLETE", "api_ref": "e2e", "page_size": 1}
                ).json()["count"]
                pending = sum(
                    client.get(
                        "/invoices/", params={"state": s, "api_ref": "e2e", "page_size": 1}
                    ).json()["count"]
                    for s in ("PENDING", "PROCESSING")
                )
                undelivered = sum(
                    client.get("/webhooks/events/", params={"status": s, "page_size": 1}).json()[
                        "count"
                    ]
                    for s in ("PENDING", "PROCESSING")
                )
                if pending == 0 and undelivered == 0:
                    break
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            delivered = client.get(
                "/webhooks/events/", params={"status": "DELIVERED", "page_size": 1}
            ).json()["count"]
        sent = httpx.get(
            f"http://127.0.0.1:{self.sim_port}/control/transactions",
            params={"limit": pushes.requests + CONNECTIONS},
        ).json()
        undelivered = sum(tx["callbacks_failed"] for tx in sent)
        return completed / elapsed, delivered / elapsed, undelivered

    # ------------------------------------------------------------------ versus the peer
    def versus_peer(self) -> dict[str, Any]:
        """pesagate (one process, its worker on, as `pesagate serve` runs) and the Django peer
        (gunicorn, one sync worker), both on SQLite and both up throughout, loaded one at a
        time: each round runs push, status and callback on each, the first system alternating
        from round to round."""
        rounds, seconds = (3, 3) if self.quick else (5, 8)
        pending = 8_000 if self.quick else 30_000
        print(f"== versus the Django peer: {rounds} rounds of {seconds} s", flush=True)
        db_url = fresh_database("sqlite", self.workdir)
        port, peer_port = free_port(), free_port()
        url, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer_port}"
        daraja = f"http://127.0.0.1:{self.sim_port}"
        try:
            merchant = asyncio.run(prepare(db_url))
            settled = asyncio.run(
                seed_invoices(db_url, merchant, 1_000, InvoiceState.COMPLETE, url)
            )
            processing = asyncio.run(
                seed_invoices(db_url, merchant, pending, InvoiceState.PROCESSING, url)
            )
            ours_file = self.workdir / "versus_callbacks.txt"
            ours_file.write_text("".join(f"{t} {c} {p} 100.00\n" for _, t, c, p in processing))
            peer_db, peer_file = self.workdir / "peer.sqlite3", self.workdir / "peer_callbacks.txt"
            peer.prepare(peer_db, daraja, peer_port, pending, peer_file)
            scripts = {
                "pesagate": {
                    "stk_push": ("stk_push.lua", {"BENCH_SECRET_KEY": merchant.secret_key}),
                    "status": (
                        "status.lua",
                        {
                            "BENCH_SECRET_KEY": merchant.secret_key,
                            "BENCH_INVOICE_IDS": ",".join(row[0] for row in settled[:500]),
                        },
                    ),
                    "callback": ("callback.lua", {"BENCH_CALLBACKS_FILE": str(ours_file)}),
                },
                "peer": {
                    "stk_push": ("peer_stk_push.lua", {}),
                    "status": (
                        "peer_status.lua",
                        {"BENCH_CHECKOUT_IDS": ",".join(peer.settled_ids(pending, 500))},
                    ),
                    "callback": ("peer_callback.lua", {"BENCH_CALLBACKS_FILE": str(peer_file)}),
                },
            }
            urls = {"pesagate": url, "peer": peer_url}
            results: dict[str, dict[str, list[dict[str, float]]]] = {
                system: {path: [] for path in PEER_PATHS} for system in urls
            }
            offsets = dict.fromkeys(urls, 0)
            with (
                self.gateway(db_url, 1, port),
                peer.serve(peer_db, daraja, peer_port),
            ):
                self.sim_faults(lost_callback=1.0)
                for round_no in range(rounds):
                    order = list(urls) if round_no % 2 == 0 else list(reversed(urls))
                    for system in order:
                        for path in PEER_PATHS:
                            script, env = scripts[system][path]
                            env = env | {"BENCH_CALLBACK_OFFSET": str(offsets[system])}
                            if path == "stk_push":
                                env |= self.phones()
                            result = wrk(
                                urls[system], script, seconds, PEER_CONNECTIONS, env, threads=1
                            )
                            if path == "callback":
                                offsets[system] += result.requests
                            results[system][path].append(
                                {
                                    "rps": round(result.rps, 1),
                                    "p50_ms": round(result.p50_ms, 2),
                                    "p99_ms": round(result.p99_ms, 2),
                                    "errors": result.errors + result.non2xx,
                                }
                            )
                            time.sleep(SETTLE_S)
                    print(f"   round {round_no + 1}/{rounds} done", flush=True)
        finally:
            drop_database(db_url)
        return {"rounds": rounds, "seconds": seconds, "connections": PEER_CONNECTIONS, **results}

    # ------------------------------------------------------------------ nodes
    def nodes(self) -> dict[str, Any]:
        """PostgreSQL, one node against two. A node is one gateway process on its own port,
        capped at NODE_CORES of CPU (`cpu_capped`) so that a second node brings CPU of its own
        while PostgreSQL, the simulator and wrk share the rest of the machine. Each node gets
        its own wrk with the same connections, as a balancer spreading clients evenly would:
        every node is loaded alike, whether it is alone or not, so the ratio shows what the
        nodes take from each other (the database, its locks). All three gateways are up
        throughout on one database and loaded one system at a time, in interleaved rounds."""
        rounds = 3
        print(f"== nodes: PostgreSQL, 1 and 2 nodes of {NODE_CORES} core", flush=True)
        db_url = fresh_database("postgresql", self.workdir)
        ports = [free_port() for _ in range(3)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        systems = {"one": urls[:1], "two": urls[1:]}
        results: dict[str, dict[str, list[dict[str, float]]]] = {
            system: {"stk_push": [], "status": []} for system in systems
        }
        try:
            merchant = asyncio.run(prepare(db_url))
            settled = asyncio.run(
                seed_invoices(db_url, merchant, 1_000, InvoiceState.COMPLETE, urls[0])
            )
            env = {"BENCH_SECRET_KEY": merchant.secret_key}
            status_env = env | {"BENCH_INVOICE_IDS": ",".join(row[0] for row in settled[:500])}
            with ExitStack() as stack:
                gateways = [stack.enter_context(self.gateway(db_url, 1, port)) for port in ports]
                stack.enter_context(cpu_capped([gateway.pid for gateway in gateways], NODE_CORES))
                self.sim_faults(lost_callback=1.0)
                for round_no in range(rounds):
                    for system in systems if round_no % 2 == 0 else reversed(systems):
                        for path, script, make_env in (
                            ("stk_push", "stk_push.lua", lambda: env | self.phones()),
                            ("status", "status.lua", lambda: status_env),
                        ):
                            targets = systems[system]
                            result = wrk_each(
                                targets,
                                script,
                                self.seconds,
                                CONNECTIONS,
                                [make_env() for _ in targets],
                            )
                            results[system][path].append(
                                {
                                    "rps": round(result.rps, 1),
                                    "p99_ms": round(result.p99_ms, 2),
                                    "errors": result.errors + result.non2xx,
                                }
                            )
                            time.sleep(SETTLE_S)
        except CpuCapUnavailable as error:
            print(f"   skipped: {error}", flush=True)
            return {"skipped": str(error)}
        finally:
            drop_database(db_url)
        return {
            "db": "postgresql",
            "cores_per_node": NODE_CORES,
            "rounds": rounds,
            "seconds": self.seconds,
            **results,
        }

    # ------------------------------------------------------------------ scale
    def scale(self, db: str) -> dict[str, Any]:
        sizes = (1_000, 1_000_000) if not self.quick else (1_000, 50_000)
        result: dict[str, Any] = {"db": db}
        for size in sizes:
            print(f"== scale: {db} with {size:,} invoices", flush=True)
            db_url = fresh_database(db, self.workdir)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            try:
                merchant = asyncio.run(prepare(db_url))
                rows = asyncio.run(
                    seed_invoices(db_url, merchant, size, InvoiceState.COMPLETE, url)
                )
                ids = [rows[i][0] for i in range(0, size, max(1, size // 500))]
                env = {"BENCH_SECRET_KEY": merchant.secret_key}
                with self.gateway(db_url, 1, port) as gateway, RssSampler(gateway.pid) as rss:
                    self.sim_faults(lost_callback=1.0)
                    status = wrk(
                        url,
                        "status.lua",
                        self.seconds,
                        CONNECTIONS,
                        {**env, "BENCH_INVOICE_IDS": ",".join(ids)},
                    )
                    time.sleep(SETTLE_S)
                    push = wrk(url, "stk_push.lua", self.seconds, CONNECTIONS, env | self.phones())
            finally:
                drop_database(db_url)
            label = "1k" if size == 1_000 else ("1m" if size == 1_000_000 else f"{size // 1000}k")
            result[f"status_rps_{label}"] = round(status.rps, 1)
            result[f"stk_push_rps_{label}"] = round(push.rps, 1)
            result[f"rss_mb_{label}"] = round(rss.peak_kb / 1024, 1)
        return result


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(
        next(
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    )
    python = f"Python {platform.python_version()}"
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} x {model}, {memory_kb // 1024 // 1024} GiB, {python}, {system}"


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--peer-only", action="store_true", help="Only pesagate side by side with the peer."
    )
    parser.add_argument(
        "--scale-only",
        action="store_true",
        help="Only status, push and peak RSS with 1,000 and 1,000,000 stored invoices "
        "(PostgreSQL; with --quick, SQLite and 50,000). Results: bench/results/scale.json.",
    )
    parser.add_argument(
        "--configs",
        help="Only these runs, e.g. postgresql:1,postgresql:2 (docs/SCALING.md); no scale "
        "runs, no peer. Results: bench/results/configs.json.",
    )
    parser.add_argument(
        "--nodes-only",
        action="store_true",
        help=f"Only PostgreSQL with one node against two, each capped at {NODE_CORES} core. "
        "Results: bench/results/nodes.json.",
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    configs = (
        [("sqlite", 1)]
        if args.quick
        else [("sqlite", 1), ("sqlite", cores), ("postgresql", 1), ("postgresql", cores)]
    )
    if args.scale_only:
        with tempfile.TemporaryDirectory(prefix="pesagate-bench-") as tmp:
            bench = Bench(args.quick, Path(tmp))
            with bench.simulator():
                scale = bench.scale("sqlite" if args.quick else "postgresql")
        out = HERE / "results" / "scale.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"commit": commit(), "scale": scale}, indent=2) + "\n")
        print(json.dumps(scale, indent=2))
        return
    if args.nodes_only:
        with tempfile.TemporaryDirectory(prefix="pesagate-bench-") as tmp:
            bench = Bench(args.quick, Path(tmp))
            with bench.simulator():
                measured = bench.nodes()
        out = HERE / "results" / "nodes.json"
        out.write_text(json.dumps({"commit": commit(), "nodes": measured}, indent=2) + "\n")
        print("\n".join(nodes_report(measured)))
        return
    if args.configs:
        only = [(db, int(n)) for db, _, n in (c.partition(":") for c in args.configs.split(","))]
        with tempfile.TemporaryDirectory(prefix="pesagate-bench-") as tmp:
            bench = Bench(args.quick, Path(tmp))
            with bench.simulator(), bench.receiver():
                runs = [bench.run_config(db, processes) for db, processes in only]
        results = {"commit": commit(), "machine": machine(), "quick": args.quick, "runs": runs}
        out = HERE / "results" / "configs.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(runs, indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="pesagate-bench-") as tmp:
        bench = Bench(args.quick, Path(tmp))
        with bench.simulator(), bench.receiver():
            nodes: dict[str, Any] | None = None
            if not args.peer_only:
                runs = [bench.run_config(db, processes) for db, processes in configs]
                scale = bench.scale("sqlite" if args.quick else "postgresql")
                nodes = bench.nodes() if not args.quick else None
            versus = bench.versus_peer()
    results: dict[str, Any] = {"commit": commit(), "machine": machine(), "quick": args.quick}
    if args.peer_only:
        results["versus_peer"] = versus
        out = HERE / "results" / "peer.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print("\n".join(versus_peer_report(versus)))
        return
    results |= {"runs": runs, "scale": scale, "versus_peer": versus}
    if nodes is not None:
        results["nodes"] = nodes
    out = HERE / "results" / ("quick.json" if args.quick else "latest.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    write_report(results, HERE.parent / ("BENCHMARKS.quick.md" if args.quick else "BENCHMARKS.md"))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
