"""CPU time per request of one gateway process, per hot path, under wrk load.

    python -m bench.cost                       # push, status, callback on SQLite, 3 rounds
    python -m bench.cost --db postgresql --paths push --rounds 5

Requests per second on this shared, noisy machine move by 15-30% between runs of the same
code; the CPU a request costs the gateway moves much less, because it does not depend on what
else the machine was doing. This reads the gateway's and the simulator's user + system time
from /proc before and after each wrk run and divides by the requests wrk completed. Rounds are
interleaved (push, status, callback, push, ...); the median of each path is printed.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import (
    _tree,
    drop_database,
    free_port,
    fresh_database,
    seed_for_paths,
    wrk,
)
from bench.run import CONNECTIONS, SETTLE_S, Bench

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SCRIPTS = {"push": "stk_push.lua", "status": "status.lua", "callback": "callback.lua"}


def cpu_s(root_pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn's workers)."""
    total = 0
    for pid in _tree(root_pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS_PER_S


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--paths", default="push,status,callback")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    paths = args.paths.split(",")
    with tempfile.TemporaryDirectory(prefix="pesagate-cost-") as tmp:
        bench = Bench(quick=True, workdir=Path(tmp))
        db_url = fresh_database(args.db, Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            env = seed_for_paths(db_url, Path(tmp), url, 40_000)
            costs: dict[str, list[tuple[float, float, float]]] = {path: [] for path in paths}
            refused = 0
            # Each callback round starts past every callback sent before (in flight included).
            callback_offset = 0
            with bench.simulator() as simulator, bench.gateway(db_url, 1, port) as gateway:
                bench.sim_faults(lost_callback=1.0)
                for _ in range(args.rounds):
                    for path in paths:
                        run_env = env | {"BENCH_CALLBACK_OFFSET": str(callback_offset)}
                        if path == "push":
                            run_env |= bench.phones()
                        before = cpu_s(gateway.pid), cpu_s(simulator.pid)
                        result = wrk(url, SCRIPTS[path], args.seconds, CONNECTIONS, run_env)
                        time.sleep(SETTLE_S)  # requests still inside the gateway finish
                        after = cpu_s(gateway.pid), cpu_s(simulator.pid)
                        done = max(result.requests, 1)
                        refused += result.non2xx + result.errors
                        if path == "callback":
                            callback_offset += result.requests + CONNECTIONS
                        costs[path].append(
                            (
                                1000 * (after[0] - before[0]) / done,
                                1000 * (after[1] - before[1]) / done,
                                result.rps,
                            )
                        )
        finally:
            drop_database(db_url)
    print(f"{args.db}, one gateway process, medians of {args.rounds} rounds ({refused} errors):")
    for path, runs in costs.items():
        gateway_ms = statistics.median(run[0] for run in runs)
        simulator_ms = statistics.median(run[1] for run in runs)
        rps = statistics.median(run[2] for run in runs)
        each = ", ".join(f"{run[0]:.2f}" for run in runs)
        print(
            f"  {path:9} gateway {gateway_ms:.2f} ms CPU/request ({each}); "
            f"simulator {simulator_ms:.2f} ms; {rps:.0f} rps"
        )


if __name__ == "__main__":
    main()
