"""The soak's webhook receiver: fails a share of requests (SOAK_FAIL_RATE, seeded) and writes
every request, with the status it answered, to SOAK_RECEIVER_LOG as a JSON line, for the
checker to verify (signatures, states delivered, how long each event waited).

`POST /fail-rate` with `{"rate": 0.0}` changes the share (the soak's isolation probe wants
nothing to wait for but the worker)."""

import os
import random
import time
from typing import Any

import orjson

FAIL_RATE = [float(os.environ.get("SOAK_FAIL_RATE", "0.2"))]
LOG = open(os.environ["SOAK_RECEIVER_LOG"], "ab")  # noqa: SIM115 - lives as long as the app
RNG = random.Random(int(os.environ.get("SOAK_SEED", "1")))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/fail-rate":
        FAIL_RATE[0] = float(orjson.loads(body)["rate"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    status = 500 if RNG.random() < FAIL_RATE[0] else 200
    headers = {name.decode(): value.decode() for name, value in scope["headers"]}
    entry = {
        "headers": headers,
        "body": body.decode(),
        "received_at": time.time(),
        "status": status,
    }
    LOG.write(orjson.dumps(entry) + b"\n")
    LOG.flush()
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})
