"""API fuzzing with schemathesis against a running gateway and its own `/openapi.json`.

One bounded, deterministic campaign per database (module-scoped, SQLite and PostgreSQL) drives
every documented operation with schemathesis-generated requests, positive and negative,
authenticated with a real merchant secret key; a fuzzing dictionary of hostile values (unicode
digits, huge integers, extreme datetimes, ...) and the ids of real resources are mixed into the
generated values. The cases are drawn once for both campaigns ("Generation" below). A few
deterministic probes add what generation cannot reach (no key, the public key, a wrong key,
a non-JSON content type, a malformed or oversized body, Idempotency-Key reuse). The tests then
assert on what the campaign saw: no 5xx, every status code documented, every body matching its
documented schema.

`PESAGATE_FUZZ_EXAMPLES` (default 40, per operation and generation mode) scales it up locally.
"""

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pickle
import re
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NOT_SET
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from pesagate.app import create_app
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.models import Environment
from pesagate.services import create_merchant
from pesagate.simulator import SimulatorSettings
from tests.fixtures.databases import new_database, require_postgres
from tests.fixtures.digits import arabic_indic, fullwidth
from tests.fixtures.looplag import LoopLagMonitor, WithLoopMonitor
from tests.fixtures.servers import SHARED_SSL_CONTEXT, UvicornThread, bound_socket, wait_until

EXAMPLES = int(os.environ.get("PESAGATE_FUZZ_EXAMPLES", "40"))
EXCLUDED_PATHS = re.compile(r"^/sim(/|$)|^/metrics$")  # the mounted simulator; Prometheus text
APPROVING_PHONE = "254712345678"  # any Safaricom number approves in the simulator

# Fuzzing dictionaries, one per kind of field (hypothesis favours a dictionary's first entries,
# so each stays short). Numbers: huge exponents and long digit strings (costly to convert),
# digits of other scripts (some pass int(), some only str.isdigit()), integers past SQLite's 64
# bits, odd JSON numbers. Datetimes: the edges of what Python can represent once moved to UTC.
# Words: blanks, control and bidi characters, the enum words, phones (one in Arabic-Indic
# digits), URLs.
DICTIONARIES: dict[str, list[str | int | float]] = {
    "numbers": [
        "1e2000000",
        "²",
        arabic_indic("100"),
        "9" * 5000,
        "1e308",
        fullwidth("10"),
        "①",
        "9223372036854775807",
        "99999999999999999999999",
        "0",
        "-1",
        "١٢",
        "1e3",
        "10.005",
        "NaN",
        "",
        "1_000",
        "+100",
        "1e-2000000",
        2**63,
        10**30,
        -1,
        0,
        0.5,
        10,
        1e20,
    ],
    "datetimes": [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "2026-02-30T00:00:00Z",
        "2026-01-01",
        "2026-01-01T00:00:00Z",
        "²",
        "",
    ],
    "words": [
        "",
        " ",
        "\u0000",
        "line\r\nInjected: yes",
        "\x1b[31mred",
        "\u202egnp.exe",
        "2547" + arabic_indic("12345678"),
        "null",
        "%",
        "../",
        APPROVING_PHONE,
        "0712345678",
        "+254712345678",
        "254700000001",
        "KES",
        "USD",
        "BUSINESS-PAYS",
        "CUSTOMER-PAYS",
        "M-PESA",
        "PENDING",
        "COMPLETE",
        "FAILED",
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/",
        "ftp://127.0.0.1/",
    ],
}


def dictionary_for(name: str) -> str:
    if re.search(r"page|size|amount|count|limit", name):
        return "numbers"
    if re.search(r"created|_at$|_after$|_before$|date|time", name):
        return "datetimes"
    return "words"


CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


# ---------------------------------------------------------------------------------------------
# A running gateway with one merchant and a few real resources for the fuzzer to find.


@dataclass
class FuzzGateway:
    url: str
    secret_key: str
    public_key: str
    ids: dict[str, list[str]]  # parameter name -> real ids (ours, and another merchant's)
    loop: LoopLagMonitor  # how long the server's event loop was held

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=30,
            trust_env=False,
            verify=SHARED_SSL_CONTEXT,
        )


def _make_merchants(db_url: str) -> tuple[Any, Any]:
    async def go() -> tuple[Any, Any]:
        db = Database(db_url)
        try:
            async with db.transaction() as session:
                ours = await create_merchant(session, "Fuzz Shop", Environment.SANDBOX)
                theirs = await create_merchant(session, "Other Shop", Environment.SANDBOX)
            return ours, theirs
        finally:
            await db.dispose()

    return asyncio.run(go())


# Under pytest-xdist, tests/fixtures/scheduling.py keeps each campaign's tests on one worker.
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzGateway]:
    # The whole campaign runs once on SQLite and once on PostgreSQL (like `db_url`).
    if request.param == "postgresql":
        require_postgres(request, "the fuzz run")
    databases = new_database(
        request, request.param, tmp_path_factory.mktemp("api-fuzz"), migrated=True
    )
    db_url = next(databases)
    try:
        yield from _serve(db_url)
    finally:
        databases.close()


def _serve(db_url: str) -> Iterator[FuzzGateway]:
    ours, theirs = _make_merchants(db_url)
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        database_url=db_url,
        public_url=url,
        stk_prompt_ttl_s=1.0,
        reconcile_grace_s=0.3,
        reconcile_max_s=5.0,
        reconcile_backoff_s=0.2,
        worker_poll_s=0.05,
        webhook_timeout_s=1.0,
        webhook_max_attempts=1,
        webhook_backoff_s=0.0,
    )
    simulator = SimulatorSettings(delay_min_s=0, delay_max_s=0, prompt_ttl_s=1)
    monitor = LoopLagMonitor()
    app = WithLoopMonitor(create_app(settings, simulator_settings=simulator), monitor)
    with UvicornThread(app, sock):
        gateway = FuzzGateway(url, ours.keys.secret_key, ours.keys.public_key, {}, monitor)
        gateway.ids = _seed(gateway, ours, theirs)
        # Daraja's result routes: a real invoice's callback URL, and a Reversal Result's kind.
        gateway.ids["token"] = [_callback_token(db_url, gateway.ids["invoice_id"][0]), "x"]
        gateway.ids["kind"] = ["result"]
        yield gateway
    monitor.stop()


def _seed(gateway: FuzzGateway, ours: Any, theirs: Any) -> dict[str, list[str]]:
    """A working wallet, a transfer, a COMPLETE invoice, a FAILED webhook event, a payment
    link, a chargeback, an invoice still refundable and a checkout session."""
    dead = bound_socket()  # bound, never listening: deliveries are refused at once
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/hook"
    auth = {"Authorization": f"Bearer {gateway.secret_key}"}
    with gateway.client(**auth) as api:

        def ok(response: httpx.Response) -> Any:
            assert response.status_code == 200, response.text
            return response.json()

        wallet = ok(api.post("/api/v1/wallets/", json={"currency": "KES", "label": "fuzz"}))
        webhook = ok(api.post("/api/v1/webhooks/", json={"endpoint": dead_url, "challenge": "c"}))
        session = ok(
            api.post(
                "/api/v1/payment/mpesa-stk-push/",
                json={"phone_number": APPROVING_PHONE, "amount": 100, "api_ref": "fuzz"},
            )
        )
        invoice_id = session["invoice"]["invoice_id"]
        wait_until(
            lambda: (
                ok(api.post("/api/v1/payment/status/", json={"invoice_id": invoice_id}))["invoice"][
                    "state"
                ]
                == "COMPLETE"
            ),
            what="the seed invoice to complete",
        )
        ok(
            api.post(
                f"/api/v1/wallets/{ours.settlement_wallet.wallet_id}/intra_transfer/",
                json={"wallet_id": wallet["wallet_id"], "amount": 10, "narrative": "fuzz"},
            )
        )
        events = wait_until(
            lambda: ok(api.get("/api/v1/webhooks/events/", params={"status": "FAILED"}))["results"],
            what="the seed webhook event to fail",
        )
        link = api.post("/api/v1/paymentlinks/", json={"title": "fuzz", "amount": 100}).json()
        # Other phones: the fuzzing's own pushes to APPROVING_PHONE stay under its prompt limit.
        refunded, to_refund = (_paid_invoice(api, ok, f"25471234{n:04d}") for n in (1, 2))
        chargeback = api.post(
            "/api/v1/chargebacks/",
            json={
                "invoice_id": refunded["invoice_id"],
                "amount": refunded["value"],
                "reason": "Other",
            },
        )
        assert chargeback.status_code == 201, chargeback.text
    with gateway.client(**{"X-KULMI-PUBLIC-API-KEY": gateway.public_key}) as browser:
        checkout = browser.post("/api/v1/checkout/", json={"amount": 100}).json()
    dead.close()
    return {
        "invoice_id": [invoice_id],
        "wallet_id": [
            ours.settlement_wallet.wallet_id,
            wallet["wallet_id"],
            theirs.settlement_wallet.wallet_id,
        ],
        "webhook_id": [webhook["id"]],
        "event_id": [events[0]["id"]],  # how many have failed by now varies
        "link_id": [link["id"]],
        "checkout_id": [checkout["id"]],
        "chargeback_id": [chargeback.json()["chargeback_id"]],
        "refundable": [to_refund["invoice_id"], to_refund["value"]],
    }


def _callback_token(db_url: str, invoice_id: str) -> str:
    async def go() -> str:
        db = Database(db_url)
        try:
            async with db.read() as session:
                query = text("SELECT callback_token FROM invoices WHERE invoice_id = :i")
                return str(await session.scalar(query, {"i": invoice_id}))
        finally:
            await db.dispose()

    return asyncio.run(go())


def _paid_invoice(api: httpx.Client, ok: Any, phone: str) -> dict[str, Any]:
    """A COMPLETE invoice with its M-Pesa receipt (a refund needs it)."""
    session = ok(
        api.post(
            "/api/v1/payment/mpesa-stk-push/",
            json={"phone_number": phone, "amount": 100, "api_ref": "fuzz-refund"},
        )
    )
    invoice_id = session["invoice"]["invoice_id"]
    return wait_until(  # type: ignore[no-any-return]
        lambda: (
            (
                invoice := ok(api.post("/api/v1/payment/status/", json={"invoice_id": invoice_id}))[
                    "invoice"
                ]
            )["mpesa_reference"]
            and invoice
        ),
        what="a seed invoice paid with a receipt",
    )


# ---------------------------------------------------------------------------------------------
# The document, and the schemathesis schema built from it.


@pytest.fixture(scope="module")
def openapi_doc(fuzz_gateway: FuzzGateway) -> dict[str, Any]:
    with fuzz_gateway.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def dangling_refs(doc: dict[str, Any]) -> set[str]:
    def resolves(ref: str) -> bool:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    refs = set(re.findall(r'"\$ref":\s*"([^"]+)"', json.dumps(doc)))
    return {ref for ref in refs if not ref.startswith("#/") or not resolves(ref)}


def schemathesis_config(
    url: str, secret_key: str, ids: dict[str, list[str]], doc: dict[str, Any]
) -> SchemathesisConfig:
    """Every query parameter and top-level body field draws, with some probability, from a
    dictionary instead (id-like ones from the real ids): schemathesis' type-wide
    dictionaries skip the `anyOf: [string, null]` parameters FastAPI documents, so each is
    bound by name."""
    bindings: dict[str, dict[str, Any]] = {}
    for operations in doc["paths"].values():
        for operation in operations.values():
            names = [(p["in"], p["name"]) for p in operation.get("parameters", [])]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                names += [("body", name) for name in media.get("schema", {}).get("properties", {})]
            for location, name in names:
                real = name in ids or (location == "body" and name.endswith("_id"))
                bindings[f"{location}.{name}"] = (
                    {"dictionary": "real_ids", "probability": 0.5}
                    if real
                    else {"dictionary": dictionary_for(name), "probability": 0.3}
                )
    return SchemathesisConfig.from_dict(
        {
            "base-url": url,
            "headers": {"Authorization": f"Bearer {secret_key}"},
            "dictionaries": {
                **{name: {"values": values} for name, values in DICTIONARIES.items()},
                "real_ids": {"values": sorted({v for values in ids.values() for v in values})},
            },
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
            "parameters": bindings,
        }
    )


# ---------------------------------------------------------------------------------------------
# Generation, once for both campaigns. Hypothesis draws every case from a fixed seed, and what
# a case gets back never steers what is drawn next, so the SQLite and PostgreSQL campaigns
# would draw the same cases but for the real ids, which differ between the two databases.
# The cases are therefore drawn once, with a placeholder standing for each real id, kept in a
# file that every pytest-xdist worker of the run shares (the first campaign to need them draws
# them; the other waits), and each campaign sends them with its own ids put in. Drawing is
# about half of a campaign's CPU time.

SECRET_PLACEHOLDER = "@secret@"  # the merchant's secret key, in the config's headers
CASE_FIELDS = ("path_parameters", "headers", "cookies", "query", "body", "media_type")
Recorded = dict[str, list[dict[str, Any]]]  # operation label -> its cases' fields, in order


def placeholders(ids: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: [f"@{name}.{i}@" for i in range(len(values))] for name, values in ids.items()}


def shared_cases(doc: dict[str, Any], ids: dict[str, list[str]], directory: Path) -> Recorded:
    """The cases of every operation, drawn by the first campaign of the run that asks."""
    key = hashlib.sha256(
        orjson.dumps([doc, placeholders(ids), EXAMPLES], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()[:16]
    path = directory / f"fuzz-cases-{key}.pickle"
    with (directory / "fuzz-cases.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not path.exists():
            drawn = draw_cases(doc, placeholders(ids))
            path.with_suffix(".partial").write_bytes(pickle.dumps(drawn))
            path.with_suffix(".partial").rename(path)
        return pickle.loads(path.read_bytes())  # type: ignore[no-any-return]


def draw_cases(doc: dict[str, Any], ids: dict[str, list[str]]) -> Recorded:
    config = schemathesis_config("http://placeholder", SECRET_PLACEHOLDER, ids, doc)
    schema = schemathesis.openapi.from_dict(doc, config=config)
    recorded: Recorded = {}
    for item in schema.get_all_operations():
        if not isinstance(item, Ok):
            raise item.err()  # a document schemathesis cannot read: a bug in itself
        operation = item.ok()
        if not EXCLUDED_PATHS.match(operation.path):
            recorded[operation.label] = draw(operation)
    return recorded


def draw(operation: Any) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def one(case: Any) -> None:
            fields = {name: getattr(case, name) for name in CASE_FIELDS}
            fields["headers"] = dict(fields["headers"])
            cases.append({k: v for k, v in fields.items() if v is not NOT_SET})

        # Unsatisfiable: nothing to negate (an operation without parameters or body).
        with contextlib.suppress(hypothesis.errors.Unsatisfiable):
            one()
    return cases


def with_real_ids(value: Any, real: dict[str, str]) -> Any:
    """`value` with every placeholder replaced by the real id it stands for."""
    if isinstance(value, str):
        for placeholder, real_id in real.items():
            value = value.replace(placeholder, real_id)
        return value
    if isinstance(value, bytes):
        return with_real_ids(value.decode("utf-8", "surrogateescape"), real).encode(
            "utf-8", "surrogateescape"
        )
    if isinstance(value, dict):
        return {with_real_ids(k, real): with_real_ids(v, real) for k, v in value.items()}
    if isinstance(value, list):
        return [with_real_ids(item, real) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# The campaign: every example of every operation runs (nothing stops at the first failure), and
# every check's verdict is kept, so each test below can report everything it is about at once.


@dataclass
class Finding:
    operation: str
    check: str
    status: int | None
    title: str
    message: str
    curl: str
    count: int = 1


@dataclass
class Campaign:
    requests: int = 0
    statuses: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    declared: dict[str, set[str]] = field(default_factory=dict)
    findings: dict[tuple[str, str, int | None, str], Finding] = field(default_factory=dict)
    # (sent, answered, curl) of every request: to name what was in flight while the loop was held
    # (the command is written only when it is shown: writing it for every request cost ~3%)
    timeline: list[tuple[float, float, Callable[[], str]]] = field(default_factory=list)

    tracebacks: "ServerErrorLog" = field(default_factory=lambda: ServerErrorLog())
    # operations that answered a 2xx body their document gives no schema for (nothing checked)
    unchecked: set[str] = field(default_factory=set)

    def record(
        self,
        operation: str,
        check: str,
        status: int | None,
        failure: Failure | str,
        curl: Callable[[], str],
        title: str | None = None,
    ) -> None:
        title = title or (failure if isinstance(failure, str) else failure.title)
        message = failure if isinstance(failure, str) else str(failure.message)
        key = (operation, check, status, title)
        if key in self.findings:
            self.findings[key].count += 1
        else:
            self.findings[key] = Finding(operation, check, status, title, message, curl())

    def of(self, *checks: str) -> list[Finding]:
        return [finding for finding in self.findings.values() if finding.check in checks]


class ServerErrorLog(logging.Handler):
    """Keeps, per request id, where each unhandled exception was raised. The gateway runs in
    this process: http.py logs it with `log.exception`, inside its `except` block."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.causes: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg if isinstance(record.msg, dict) else {}
        exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        if exc is not None and event.get("request_id"):
            self.causes[event["request_id"]] = describe(exc)

    def cause(self, request_id: str) -> str | None:
        return self.causes.get(request_id)


def describe(exc: BaseException) -> str:
    """`ValueError at pesagate/kit/pagination.py:33`: the root exception, the innermost frame of
    the project."""
    root = exc
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    where = "?"
    for frame, line in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if "/pesagate/" in filename:
            where = f"pesagate/{filename.rsplit('/pesagate/', 1)[1]}:{line}"
    return f"{type(root).__name__} at {where}"


def run_case(campaign: Campaign, case: Any, **call: Any) -> None:
    label = case.operation.label
    campaign.requests += 1

    def curl() -> str:
        return str(case.as_curl_command(headers=call.get("headers")))

    sent = time.monotonic()
    try:
        response = case.call(**call)
    except (requests.ConnectionError, requests.Timeout) as exc:  # dropped or hung: a 5xx too
        campaign.record(label, "not_a_server_error", None, f"{type(exc).__name__}: {exc}", curl)
        return
    finally:
        campaign.timeline.append((sent, time.monotonic(), curl))
    campaign.statuses[label].add(response.status_code)
    if 200 <= response.status_code < 300 and response.content:
        declared = case.operation.definition.raw["responses"].get(str(response.status_code), {})
        if not declared.get("content", {}).get("application/json", {}).get("schema"):
            campaign.unchecked.add(label)
    # A 500 says nothing about its cause: tell them apart by the server's own traceback.
    request_ids = {k.lower(): v for k, v in response.headers.items()}.get("x-request-id", [""])
    cause = campaign.tracebacks.cause(request_ids[0])
    for check in CHECKS:
        failures: list[Failure] = []
        try:
            case.validate_response(response, checks=[check], headers=call.get("headers"))
        except FailureGroup as group:
            failures = list(group.exceptions)
        except Failure as single:
            failures = [single]
        for failure in failures:
            title = cause if check is not_a_server_error else None
            campaign.record(label, check.__name__, response.status_code, failure, curl, title)


def fuzz(
    campaign: Campaign, operation: Any, cases: list[dict[str, Any]], real: dict[str, str]
) -> None:
    for fields in cases:
        run_case(campaign, operation.Case(**with_real_ids(fields, real)))


def happy_paths(ids: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """One valid request per body-taking operation, so that 200 answers are checked too:
    random bodies almost never get past validation."""
    settlement, working = ids["wallet_id"][:2]
    refundable, value = ids["refundable"]
    push = {"phone_number": APPROVING_PHONE, "amount": 10}
    return {
        "POST /api/v1/payment/mpesa-stk-push/": {"body": push},
        "POST /api/v1/payment/collection/": {"body": {**push, "method": "M-PESA"}},
        "POST /api/v1/payment/status/": {"body": {"invoice_id": ids["invoice_id"][0]}},
        "POST /api/v1/payment/get_amount_estimate/": {"body": {"amount": 100}},
        "POST /api/v1/wallets/": {"body": {"currency": "KES", "label": "probe"}},
        "POST /api/v1/wallets/{wallet_id}/intra_transfer/": {
            "path_parameters": {"wallet_id": settlement},
            "body": {"wallet_id": working, "amount": 1, "narrative": "probe"},
        },
        "POST /api/v1/webhooks/": {"body": {"endpoint": "http://127.0.0.1:9/", "challenge": "c"}},
        "PATCH /api/v1/webhooks/{webhook_id}/": {"body": {"is_active": True}},
        "POST /api/v1/checkout/details/": {"body": {"checkout_id": ids["checkout_id"][0]}},
        "POST /api/v1/paymentlinks/": {"body": {"title": "probe", "amount": 100}},
        "PUT /api/v1/paymentlinks/{link_id}/": {"body": {"title": "probe"}},
        "PATCH /api/v1/paymentlinks/{link_id}/": {"body": {"usage_limit": 3}},
        "POST /api/v1/chargebacks/": {
            "body": {"invoice_id": refundable, "amount": value, "reason": "Other"}
        },
    }


def _stk(result_code: object, *items: tuple[str, object]) -> dict[str, Any]:
    metadata = {"Item": [{"Name": name, "Value": value} for name, value in items]}
    callback = {"CheckoutRequestID": "ws_CO_fuzz", "ResultCode": result_code, "ResultDesc": "x"}
    return {"Body": {"stkCallback": {**callback, "CallbackMetadata": metadata}}}


def _initiator(result_code: object, *items: tuple[str, object]) -> dict[str, Any]:
    parameters = {"ResultParameter": [{"Key": key, "Value": value} for key, value in items]}
    result = {"ResultCode": result_code, "ConversationID": "AG_fuzz", "ResultDesc": "x"}
    return {"Result": {**result, "ResultParameters": parameters}}


# What a forger (or a broken proxy) may post to Daraja's result routes: numbers costly to
# convert, digits of other scripts, odd types, deep nesting. Each must be stored as an outcome
# (or refused), never a 5xx, never holding the loop.
HOSTILE_RESULTS: list[Any] = [
    _stk("²"),
    _stk(arabic_indic("0")),
    _stk(0, ("Amount", "sNaN"), ("MpesaReceiptNumber", "X" * 5000)),
    _stk(0, ("Amount", "1e2000000"), ("PhoneNumber", fullwidth("254712345678"))),
    _stk(0, ("Amount", 1e308), ("PhoneNumber", -1), ("TransactionDate", "9" * 400)),
    _stk(10**30, ("Amount", [1, {"a": None}])),
    _initiator("R" * 5000, ("ReceiptNo", "UKS" * 2000), ("Amount", "1e2000000")),
    _initiator(0, ("TransactionStatus", "Completed"), ("Amount", "9" * 5000)),
    _initiator({"nested": True}, ("ReceiptNo", None)),
    b"[" * 50_000 + b"]" * 50_000,
    b'{"Body": ' + b"9" * 60_000 + b"}",
    [1, 2],
    "text",
    None,
]


def probe(campaign: Campaign, operation: Any, gateway: FuzzGateway) -> None:
    """What generation never sends: other credentials, other content types, odd bodies, and
    one plain valid request."""
    path_parameters = {
        name: gateway.ids.get(name, ["x"])[0] for name in re.findall(r"{(\w+)}", operation.path)
    }
    has_body = "requestBody" in operation.definition.raw

    def send(headers: dict[str, str], **case_kwargs: Any) -> None:
        kwargs = {"path_parameters": path_parameters, **case_kwargs}
        if has_body and "body" not in kwargs:
            kwargs["body"] = {}
        if "body" in kwargs:
            kwargs.setdefault("media_type", "application/json")
        run_case(campaign, operation.Case(**kwargs), headers=headers)

    secret = {"Authorization": f"Bearer {gateway.secret_key}"}  # config headers skip Case()
    send({"Authorization": ""})  # no key at all
    send({"Authorization": "Bearer ISSecretKey_test_not-a-real-key"})
    send({"Authorization": "", "X-KULMI-PUBLIC-API-KEY": gateway.public_key})
    send({"Authorization": "Bearer ISSecretKey_live_not-a-real-key"})  # wrong environment
    if has_body:
        send(secret, body="a=1", media_type="application/x-www-form-urlencoded")
        send(secret, body=b"{not json")
        send(secret, body=[1, 2])
    if has_body or operation.method.upper() == "POST":  # the body limit applies to every route
        send(secret, body={"x": "y" * 70_000})  # over 64 KiB
    if operation.path.startswith("/callbacks/"):  # Daraja's bodies have no documented schema
        for body in HOSTILE_RESULTS:
            send({}, body=body, media_type="application/json")
    # One plain valid request: real ids, no query, a valid body where one is needed.
    happy = {
        "path_parameters": path_parameters,
        **happy_paths(gateway.ids).get(operation.label, {}),
    }
    send(secret, **happy)
    if operation.method.upper() == "POST" and "body" in happy:
        # Idempotency-Key (read by hand, so not in the document): a replay, then the same key
        # with another body (422), then an over-long key (400).
        keyed = {**secret, "Idempotency-Key": f"fuzz-{operation.label}"}
        send(keyed, **happy)
        send(keyed, **happy)
        send(keyed, **{**happy, "body": {**happy["body"], "fuzz": 1}})
        send({**secret, "Idempotency-Key": "k" * 256}, **happy)


@pytest.fixture(scope="module")
def campaign(
    fuzz_gateway: FuzzGateway,
    openapi_doc: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Campaign:
    # Under pytest-xdist every worker's base directory sits in one directory of the run.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    recorded = shared_cases(openapi_doc, fuzz_gateway.ids, shared)
    real = {
        placeholder: fuzz_gateway.ids[name][i]
        for name, names in placeholders(fuzz_gateway.ids).items()
        for i, placeholder in enumerate(names)
    }
    real[SECRET_PLACEHOLDER] = fuzz_gateway.secret_key
    config = schemathesis_config(
        fuzz_gateway.url, fuzz_gateway.secret_key, fuzz_gateway.ids, openapi_doc
    )
    schema = schemathesis.openapi.from_dict(openapi_doc, config=config)
    result = Campaign()
    fuzz_gateway.loop.reset()  # the seeding and the document's first rendering are not fuzzing
    logging.getLogger("pesagate").addHandler(result.tracebacks)
    try:
        for item in schema.get_all_operations():
            if not isinstance(item, Ok):
                raise item.err()
            operation = item.ok()
            if EXCLUDED_PATHS.match(operation.path):
                continue
            result.declared[operation.label] = set(operation.definition.raw["responses"])
            fuzz(result, operation, recorded[operation.label], real)
            probe(result, operation, fuzz_gateway)
    finally:
        logging.getLogger("pesagate").removeHandler(result.tracebacks)
    assert result.requests > 0
    return result


def report(findings: list[Finding]) -> str:
    lines = []
    for finding in sorted(findings, key=lambda f: (f.operation, f.check, f.status or 0)):
        lines.append(
            f"\n- {finding.operation}: {finding.check}, status {finding.status}, "
            f"{finding.count}x: {finding.title}\n    {finding.message.strip()[:400]}\n"
            f"    e.g. {finding.curl}"
        )
    return "".join(lines)


# ---------------------------------------------------------------------------------------------
# The assertions.


def test_openapi_refs_resolve(openapi_doc: dict[str, Any]) -> None:
    """Every `$ref` resolves: the definitions of the request bodies validated by hand
    (`kit/api.py` body_schema) are moved to `components` (openapi.py), where the response
    models' are, so schemathesis can read every body."""
    assert dangling_refs(openapi_doc) == set()


def test_no_server_errors(campaign: Campaign) -> None:
    errors = campaign.of("not_a_server_error")
    assert not errors, f"{len(errors)} kinds of 5xx in {campaign.requests} requests:" + report(
        errors
    )


LOOP_HELD_MAX_S = 0.1


def test_no_request_held_the_event_loop(fuzz_gateway: FuzzGateway, campaign: Campaign) -> None:
    """Every request, however hostile, leaves the server's loop free to serve others: no tick
    of the monitor found the loop held (computing, on its own thread) for over 100 ms."""
    monitor = fuzz_gateway.loop
    assert monitor.ticks > 0, "the loop monitor never ran"
    suspects = [
        f"\n- held {held * 1000:.0f} ms while in flight: {curl()[:300]}"
        for seen, held in monitor.holds
        for sent, answered, curl in campaign.timeline
        if held >= LOOP_HELD_MAX_S and sent <= seen and answered >= seen - held
    ]
    assert monitor.worst_held_s < LOOP_HELD_MAX_S, monitor.report() + "".join(suspects)


def test_status_codes_are_documented(campaign: Campaign) -> None:
    # The message lists, per operation, every status the campaign saw and the undeclared ones.
    undeclared = {
        label: sorted(code for code in codes if str(code) not in campaign.declared[label])
        for label, codes in sorted(campaign.statuses.items())
    }
    undeclared = {label: codes for label, codes in undeclared.items() if codes}
    summary = "".join(
        f"\n- {label}: saw {sorted(campaign.statuses[label])}, "
        f"declared {sorted(campaign.declared[label])}, undeclared {codes}"
        for label, codes in undeclared.items()
    )
    assert not undeclared, "undocumented status codes:" + summary


def test_responses_match_their_schema(campaign: Campaign) -> None:
    """Every answer, successes included, has exactly the fields, types, formats and enum
    values its response model declares (each model is closed: no undeclared field)."""
    # Bodies of undeclared status codes are not checked here (there is no schema to check them
    # against); declaring them makes this test check them too.
    mismatches = campaign.of("response_schema_conformance", "content_type_conformance")
    assert not mismatches, f"{len(mismatches)} kinds of mismatch:" + report(mismatches)


def test_every_success_body_had_a_schema_to_match(campaign: Campaign) -> None:
    """An empty schema matches anything: schema conformance checked no 2xx body that way."""
    assert campaign.unchecked == set()


def test_every_operation_was_exercised(campaign: Campaign) -> None:
    """Guards the campaign itself: every operation answered at least once with a 2xx, so the
    seed data and the valid probes still reach the code behind validation."""
    never_succeeded = [
        label
        for label in campaign.declared
        if not any(200 <= code < 300 for code in campaign.statuses.get(label, ()))
    ]
    assert not never_succeeded
