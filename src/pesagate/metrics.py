"""Prometheus metrics, served at `/metrics`. One registry per process."""

import functools
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from starlette.types import Scope

REQUESTS = Counter(
    "pesagate_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "pesagate_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INVOICE_TRANSITIONS = Counter(
    "pesagate_invoice_transitions_total", "Invoice state changes", ["to_state"]
)
DARAJA_CALLS = Counter(
    "pesagate_daraja_calls_total", "Daraja calls by outcome", ["call", "outcome"]
)
STATEMENT_CHECKS = Counter(
    "pesagate_statement_checks_total",
    "Reconciliation look-ups in M-Pesa's statement (Pull Transactions)",
    ["outcome"],
)
CALLBACKS = Counter("pesagate_callbacks_total", "Daraja result callbacks received", ["outcome"])
JOB_RUNS = Counter(
    "pesagate_job_runs_total",
    "Job runs by outcome: done, again (rescheduled itself), failed (will retry), dead",
    ["kind", "outcome"],
)
JOBS_RUNNING = Gauge("pesagate_jobs_running", "Jobs running in this process now")
DEAD_JOBS = Gauge(
    "pesagate_jobs_dead", "Dead jobs in the database (as of this process's last look)", ["kind"]
)


def observe_request(scope: "Scope", status: int, duration_s: float) -> None:
    route = scope.get("route")
    path = getattr(route, "path", None) or "unmatched"
    method = scope.get("method", "")
    _requests(method, path, status).inc()
    _latency(method, path).observe(duration_s)


# Each request's series, looked up once: `labels()` checks and joins its values every time
# (~2% of an STK push). Bounded: route templates, the HTTP methods the parser knows, statuses.
@functools.lru_cache(maxsize=4096)
def _requests(method: str, path: str, status: int) -> Counter:
    return REQUESTS.labels(method, path, str(status))


@functools.lru_cache(maxsize=4096)
def _latency(method: str, path: str) -> Histogram:
    return LATENCY.labels(method, path)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
