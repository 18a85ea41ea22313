"""Prometheus metrics, served at `/metrics`. One registry per process."""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
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


def observe_request(scope: Scope, status: int, duration_s: float) -> None:
    route = scope.get("route")
    path = getattr(route, "path", None) or "unmatched"
    method = scope.get("method", "")
    REQUESTS.labels(method, path, str(status)).inc()
    LATENCY.labels(method, path).observe(duration_s)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
