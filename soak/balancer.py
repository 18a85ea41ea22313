"""The soak's load balancer in front of the API nodes: round robin, and the next node when a
connection is refused (the request never reached the dead node, so retrying is safe). An
answer cut off mid-way is a 502: that request may have been processed."""

import itertools
import os
from typing import Any

import aiohttp

BACKENDS = os.environ["SOAK_BACKENDS"].split(",")
_turn = itertools.count()
_session: aiohttp.ClientSession | None = None
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def session() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        # A new connection per request: a pooled connection to a node that was just killed
        # would fail mid-request (ambiguous); a fresh one is refused (safe to send elsewhere).
        _session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            timeout=aiohttp.ClientTimeout(total=60),
        )
    return _session


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    target = scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
    headers = {
        k.decode(): v.decode() for k, v in scope["headers"] if k.decode().lower() not in HOP_BY_HOP
    }
    first = next(_turn)
    for attempt in range(len(BACKENDS) * 2):
        backend = BACKENDS[(first + attempt) % len(BACKENDS)]
        try:
            async with session().request(
                scope["method"], backend + target, data=body, headers=headers, allow_redirects=False
            ) as response:
                payload = await response.read()
                out = [
                    (k.encode(), v.encode())
                    for k, v in response.headers.items()
                    if k.lower() not in HOP_BY_HOP
                ]
                await send(
                    {"type": "http.response.start", "status": response.status, "headers": out}
                )
                await send({"type": "http.response.body", "body": payload})
                return
        except aiohttp.ClientConnectorError:
            continue  # refused: never reached the node
        except (aiohttp.ClientError, TimeoutError):
            break
    await send({"type": "http.response.start", "status": 502, "headers": []})
    await send({"type": "http.response.body", "body": b""})
