"""Instructions per call of a hot path, counted by callgrind: its database work, or (status-app)
a whole request through the ASGI app.

    python -m bench.instructions push      # payment context, phase 1 and phase 3 of a push
    python -m bench.instructions status    # the status read
    python -m bench.instructions context   # the business and wallets a push is checked against
    python -m bench.instructions status-app  # a whole status request through the ASGI app
    python -m bench.instructions callback  # a success callback (one transaction: ledger included)

Wall-clock and even CPU-time figures on this shared machine move by 15-30% between runs of
the same code; callgrind counts instructions, which repeat to within a fraction of a percent.
The scenario runs in-process on a fresh SQLite database (no sockets, no Daraja: the push's
answer is a constant), twice under `valgrind --tool=callgrind`, with a few and with many calls. The
difference of the two totals divided by the difference of the counts is the cost of one call,
with start-up and warm-up cancelled out. Needs valgrind (apt-get install valgrind).
"""

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

FEW, MANY = 30, 130


async def run(scenario: str, count: int, workdir: Path) -> None:
    from bench.harness import prepare
    from pesagate.config import Settings
    from pesagate.db import Database
    from pesagate.kit.api import validate_body
    from pesagate.kit.logs import configure_logging
    from pesagate.kit.runtime import tune_gc
    from pesagate.mpesa.results import PushAccepted
    from pesagate.payments import service
    from pesagate.payments.callbacks import receive_callback
    from pesagate.payments.schemas import StkPushRequest

    configure_logging("console", "WARNING")  # as the bench's gateways run
    url = f"sqlite+aiosqlite:///{workdir / 'instructions.db'}"
    merchant = await prepare(url)
    settings = Settings(database_url=url)
    db = Database(url)
    tune_gc()
    body = {"phone_number": "254712345678", "amount": 100}

    async def push(number: int, answer: bool) -> str:
        context = await service.payment_context(db, merchant.business_pk)
        request = validate_body(StkPushRequest, body, context)
        async with db.transaction() as session:
            new = await service.create_invoice(session, settings, context, request)
        if answer:
            accepted = PushAccepted(f"m-{number}", f"ws_CO_{number}", "{}")
            await service.record_push_result(db, new, accepted)
        return new.view.invoice_id

    # Ten calls more than counted warm up (statement caches, first connections).
    if scenario == "push":
        for number in range(count + 10):
            await push(number, answer=True)
    elif scenario == "callback":  # the same invoices in both runs; callbacks differ in number
        tokens = await processing_invoices(db, settings, merchant.business_pk, MANY + 10)
        for number, (token, checkout) in enumerate(tokens[: count + 10]):
            await receive_callback(db, token, success_body(checkout, number), "127.0.0.1")
    elif scenario == "context":
        for _ in range(count + 10):
            await service.payment_context(db, merchant.business_pk)
    else:  # the same invoices in both runs; only the reads differ in number
        invoice_ids = [await push(number, answer=False) for number in range(MANY + 10)]
        if scenario == "status":
            for invoice_id in invoice_ids[: count + 10]:
                await service.find_invoice(db, merchant.business_pk, invoice_id)
        else:
            await status_requests(settings, merchant.secret_key, invoice_ids[: count + 10])
    await db.dispose()


async def processing_invoices(
    db: Any, settings: Any, business_pk: int, count: int
) -> list[tuple[str, str]]:
    """Pushed invoices whose push Daraja accepted: (callback token, CheckoutRequestID)."""
    from pesagate.kit.api import validate_body
    from pesagate.mpesa.results import PushAccepted
    from pesagate.payments import service
    from pesagate.payments.schemas import StkPushRequest

    tokens = []
    for number in range(count):
        context = await service.payment_context(db, business_pk)
        body = {"phone_number": "254712345678", "amount": 100}
        request = validate_body(StkPushRequest, body, context)
        async with db.transaction() as session:
            new = await service.create_invoice(session, settings, context, request)
        checkout = f"ws_CO_{number}"
        await service.record_push_result(db, new, PushAccepted(f"m-{number}", checkout, "{}"))
        tokens.append((new.callback_token, checkout))
    return tokens


def success_body(checkout: str, number: int) -> bytes:
    """Daraja's success callback for a 100-shilling push from 254712345678."""
    items = [
        {"Name": "Amount", "Value": 100},
        {"Name": "MpesaReceiptNumber", "Value": f"UKS{number:07d}"},
        {"Name": "TransactionDate", "Value": 20261206101010},
        {"Name": "PhoneNumber", "Value": 254712345678},
    ]
    callback = {
        "MerchantRequestID": f"m-{number}",
        "CheckoutRequestID": checkout,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": items},
    }
    return orjson.dumps({"Body": {"stkCallback": callback}})


async def status_requests(settings: Any, secret_key: str, invoice_ids: list[str]) -> None:
    """Status requests straight into the ASGI app (what uvicorn would call), middleware,
    routing, dependencies and rendering included; no sockets."""
    from pesagate.app import create_app

    app = create_app(settings, run_worker=False)
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {secret_key}".encode()),
    ]
    async with app.router.lifespan_context(app):
        for invoice_id in invoice_ids:
            body = b'{"invoice_id": "%s"}' % invoice_id.encode()
            sent: list[dict[str, Any]] = []

            async def receive(body: bytes = body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/api/v1/payment/status/",
                "raw_path": b"/api/v1/payment/status/",
                "query_string": b"",
                "root_path": "",
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
            }
            await app(scope, receive, send)
            assert sent[0]["status"] == 200, sent


def instructions(scenario: str, count: int) -> int:
    with tempfile.TemporaryDirectory(prefix="pesagate-instructions-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.instructions",
                scenario,
                "--inside",
                str(count),
            ],
            check=True,
            capture_output=True,
            # A fixed hash seed: set and dict orders, and so some work, vary with it (~5%).
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        totals = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
        assert totals is not None
        return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("push", "status", "context", "status-app", "callback"))
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)  # the measured child
    args = parser.parse_args()
    if args.inside is not None:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(args.scenario, args.inside, Path(tmp)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    few, many = instructions(args.scenario, FEW), instructions(args.scenario, MANY)
    per_call = (many - few) / (MANY - FEW)
    print(f"{args.scenario}: {per_call / 1e6:.2f} M instructions per call")


if __name__ == "__main__":
    main()
