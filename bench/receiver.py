"""The cheapest possible HTTP receiver for benchmarks: reads the body, answers 200."""

from typing import Any

REPLY = b'{"ResultCode":0,"ResultDesc":"Accepted"}'
HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": REPLY})
