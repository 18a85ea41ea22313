"""A worker SIGKILLed while its reversal is on the wire: another worker settles the refund by
Transaction Status, and M-Pesa's ground truth shows exactly one reversal."""

import os
import signal
import subprocess
import sys

from tests.fixtures.servers import wait_until
from tests.refunds.helpers import (
    FAST_REFUNDS,
    books_findings,
    chargeback,
    paid_invoice,
    refund,
    reversals,
    start,
    wait_final,
    wallet,
)


def test_a_worker_killed_mid_reversal_never_sends_it_twice(start_gateway, db_url):
    gateway = start(start_gateway, run_worker=False)
    invoice = paid_invoice(gateway, "254712370001", 100)
    env = {
        **os.environ,
        "PESAGATE_DATABASE_URL": db_url,
        "PESAGATE_PUBLIC_URL": gateway.url,
        "PESAGATE_WORKER_LEASE_S": "1.5",
        "PESAGATE_WORKER_POLL_S": "0.1",
        **{f"PESAGATE_{name.upper()}": str(value) for name, value in FAST_REFUNDS.items()},
    }
    # M-Pesa carries the reversal out, but its answer waits and its Result is lost: the worker
    # is killed while it waits for the acknowledgement.
    gateway.sim.control("POST", "/faults", json={"reversal_result_lost": 1.0})
    gateway.sim.control("POST", "/reversals/hold", json={"hold": True})
    created = refund(gateway, invoice)
    assert created.status_code == 201, created.text
    chargeback_id = created.json()["chargeback_id"]

    first = subprocess.Popen([sys.executable, "-m", "pesagate", "worker"], env=env)
    try:
        wait_until(lambda: reversals(gateway), what="the reversal to reach M-Pesa")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    gateway.sim.control("POST", "/reversals/hold", json={"hold": False})
    assert chargeback(gateway, chargeback_id)["status"] == "PENDING"  # nobody heard M-Pesa

    second = subprocess.Popen([sys.executable, "-m", "pesagate", "worker"], env=env)
    try:
        done = wait_final(gateway, chargeback_id, timeout_s=60)
    finally:
        second.terminate()
        second.wait()
    assert done["status"] == "COMPLETED"
    truth = reversals(gateway)
    assert len(truth) == 1 and truth[0]["reversed"] is True
    assert gateway.sim.control("GET", "/status-queries")  # settled by Transaction Status
    assert wallet(gateway)["current_balance"] == "0.00"
    assert books_findings(db_url) == []
