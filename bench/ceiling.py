"""The ceiling: a bare FastAPI app with one JSON POST route, served exactly like the gateway
(uvicorn, httptools, uvloop). The gateway cannot be faster than this on the same machine."""

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/echo")
async def echo(request: Request) -> Response:
    body: Any = orjson.loads(await request.body())
    return Response(orjson.dumps({"ok": True, "received": body}), media_type="application/json")
