"""CPU time per request of one gateway process, per hot path, under wrk load: the gateway's,
the simulator's and the whole machine's (PostgreSQL, wrk and the kernel included).

    python -m bench.cost                       # push, status, callback on SQLite, 3 rounds
    python -m bench.cost --db postgresql --paths push --rounds 5

Requests per second say how fast; this says where the CPU went, which also bounds what more
gateway processes can give on this machine: its cores divided by what one request costs the
whole machine. It reads the processes' user + system time and the machine's busy time from
/proc before and after each wrk run and divides by the requests wrk completed. On this shared
machine these figures move by 10-25% between runs as well; for comparing code, count
instructions (`bench/instructions.py`). Rounds are
interleaved (push, status, callback, push, ...); the median of each path is printed.
"""

import argparse
import os
import resource
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from bench.harness import (
    _read,
    _tree,
    cpu_capped,
    drop_database,
    free_port,
    fresh_database,
    seed_for_paths,
    wrk,
)
from bench.run import CONNECTIONS, SETTLE_S, Bench

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SCRIPTS = {"push": "stk_push.lua", "status": "status.lua", "callback": "callback.lua"}


def reading(gateway_pid: int, simulator_pid: int) -> tuple[float, ...]:
    return (
        cpu_s(gateway_pid),
        cpu_s(simulator_pid),
        postgres_cpu_s(),
        finished_children_cpu_s(),  # wrk, once it has finished
        machine_busy_s(),
    )


def finished_children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postgres_cpu_s() -> float:
    """CPU seconds of every PostgreSQL server process (backends, WAL writer, checkpointer)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        text = _read(stat)
        if "(postgres)" in text:
            ticks += _cpu_ticks(text)
    return ticks / TICKS_PER_S


def cpu_s(root_pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn's workers)."""
    ticks = sum(_cpu_ticks(_read(Path(f"/proc/{pid}/stat"))) for pid in _tree(root_pid))
    return ticks / TICKS_PER_S


def _cpu_ticks(stat: str) -> int:
    """utime + stime from a /proc/<pid>/stat text (0 for a process already gone)."""
    fields = stat.rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12]) if fields else 0


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / TICKS_PER_S


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--paths", default="push,status,callback")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument(
        "--cap", type=float, help="Cap the gateway at this many cores (a node of fixed size)."
    )
    args = parser.parse_args()
    paths = args.paths.split(",")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="pesagate-cost-") as tmp:
        bench = Bench(quick=True, workdir=Path(tmp))
        db_url = fresh_database(args.db, Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            env = seed_for_paths(db_url, Path(tmp), url, 40_000)
            costs: dict[str, list[tuple[float, ...]]] = {path: [] for path in paths}
            refused = 0
            # Each callback round starts past every callback sent before (in flight included).
            callback_offset = 0
            with (
                bench.simulator() as simulator,
                bench.gateway(db_url, 1, port) as gateway,
                cpu_capped([gateway.pid], args.cap) if args.cap else nullcontext(),
            ):
                bench.sim_faults(lost_callback=1.0)
                for _ in range(args.rounds):
                    for path in paths:
                        run_env = env | {"BENCH_CALLBACK_OFFSET": str(callback_offset)}
                        if path == "push":
                            run_env |= bench.phones()
                        before = reading(gateway.pid, simulator.pid)
                        result = wrk(url, SCRIPTS[path], args.seconds, CONNECTIONS, run_env)
                        time.sleep(SETTLE_S)  # requests still inside the gateway finish
                        after = reading(gateway.pid, simulator.pid)
                        done = max(result.requests, 1)
                        refused += result.non2xx + result.errors
                        if path == "callback":
                            callback_offset += result.requests + CONNECTIONS
                        spent = [1000 * (a - b) / done for a, b in zip(after, before, strict=True)]
                        costs[path].append((*spent, result.rps))
        finally:
            drop_database(db_url)
    print(f"{args.db}, one gateway process, medians of {args.rounds} rounds ({refused} errors):")
    print(
        "  ms of CPU per request: gateway (each round), simulator, PostgreSQL, wrk, "
        "whole machine; rps"
    )
    for path, runs in costs.items():
        gateway, simulator, postgres, load, machine, rps = (
            statistics.median(run[i] for run in runs) for i in range(6)
        )
        each = ", ".join(f"{run[0]:.2f}" for run in runs)
        print(
            f"  {path:9} gateway {gateway:.2f} ({each}); simulator {simulator:.2f}; "
            f"PostgreSQL {postgres:.2f}; wrk {load:.2f}; machine {machine:.2f}, "
            f"so at most {cores / machine * 1000:.0f} rps here; {rps:.0f} rps"
        )


if __name__ == "__main__":
    main()
