"""How much load the standalone simulator takes: STK pushes/s with instant approval, each
followed by a real callback to a receiver. Usage: `python bench/simulator.py [--seconds 10]`.

The load generator is wrk (Debian package `wrk`), so the client is not the bottleneck.
"""

import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

HERE = Path(__file__).parent
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    sim_port, receiver_port = free_port(), free_port()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pesagate",
                "simulator",
                "--port",
                str(sim_port),
                "--delay-s",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PESAGATE_LOG_LEVEL": "WARNING"},
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                "/tmp",
                "pesagate_bench_receiver:app",
                "--port",
                str(receiver_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
        ),
    ]
    try:
        sim_url = f"http://127.0.0.1:{sim_port}"
        wait_up(f"{sim_url}/control/faults")
        wait_up(f"http://127.0.0.1:{receiver_port}/")
        token = httpx.get(
            f"{sim_url}/oauth/v1/generate?grant_type=client_credentials",
            auth=("sim-consumer-key", "sim-consumer-secret"),
        ).json()["access_token"]
        ts = datetime.now(timezone(timedelta(hours=3))).strftime("%Y%m%d%H%M%S")
        env = {
            **os.environ,
            "SIM_TOKEN": token,
            "SIM_TIMESTAMP": ts,
            "SIM_PASSWORD": base64.b64encode(f"174379{PASSKEY}{ts}".encode()).decode(),
            "SIM_CALLBACK_URL": f"http://127.0.0.1:{receiver_port}/cb",
        }
        result = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "--latency",
                "-s",
                str(HERE / "simulator_push.lua"),
                sim_url,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        print(result.stdout)
        time.sleep(1)
        transactions = httpx.get(f"{sim_url}/control/transactions", timeout=60).json()
        sent = sum(t["callbacks_answered"] for t in transactions)
        print(f"transactions: {len(transactions)}, callbacks answered: {sent}")
    finally:
        for process in processes:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
