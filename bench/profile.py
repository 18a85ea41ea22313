"""Profile one hot path of a single gateway process under wrk load with py-spy.

    python -m bench.profile status            # or push, callback
    python -m bench.profile push --db postgresql --seconds 15

Prints the functions with the largest share of samples (inclusive and self) and writes the
collapsed stacks to bench/results/profile-<scenario>.txt (speedscope and flamegraph tools read
it). py-spy is not a project dependency: `pip install py-spy`.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench.harness import (
    HERE,
    drop_database,
    free_port,
    fresh_database,
    seed_for_paths,
    wrk,
)
from bench.run import CONNECTIONS, Bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("status", "push", "callback"))
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is needed: pip install py-spy")
    out = HERE / "results" / f"profile-{args.scenario}.txt"
    out.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pesagate-profile-") as tmp:
        bench = Bench(quick=True, workdir=Path(tmp))
        db_url = fresh_database(args.db, Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            env = seed_for_paths(db_url, Path(tmp), url, 20_000) | bench.phones()
            script = {"status": "status.lua", "push": "stk_push.lua", "callback": "callback.lua"}
            with bench.simulator(), bench.gateway(db_url, 1, port) as gateway:
                bench.sim_faults(lost_callback=1.0)
                recorder = threading.Thread(
                    target=subprocess.run,
                    args=(
                        [
                            py_spy,
                            "record",
                            "-p",
                            str(gateway.pid),
                            "-d",
                            str(args.seconds),
                            "-f",
                            "raw",
                            "-o",
                            str(out),
                            "-r",
                            "100",
                            "--gil",
                        ],
                    ),
                    kwargs={"capture_output": True},
                )
                recorder.start()
                result = wrk(url, script[args.scenario], args.seconds, CONNECTIONS, env)
                recorder.join()
        finally:
            drop_database(db_url)
    print(f"{args.scenario}: {result.rps:.0f} req/s, p50 {result.p50_ms:.1f} ms (under py-spy)")
    summarise(out)


def summarise(collapsed: Path, top: int = 30) -> None:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{total} samples; inclusive share:")
    for frame, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("self share:")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")


def _short(frame: str) -> str:
    """`func (path/to/module.py:12)` -> `func (module.py)`: lines would split one function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})"


if __name__ == "__main__":
    main()
