"""ASGI helpers: an app class that can drop a connection without answering, and routers' routes
shared by every app of a process.

The simulator must be able to lose a push response the way a flaky network does: the request
was processed, but the client never gets an answer. ASGI has no message for that, so the
outermost app remembers the server's transport (uvicorn exposes it on its `send` callable) and
`DroppedConnection` aborts it.
"""

import asyncio
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

TRANSPORT_KEY = "pesagate.transport"

# For every app's `telemetry`: FastAPI's own OpenTelemetry hooks, off. pesagate's metrics are
# Prometheus' (/metrics); with the hooks on, FastAPI asked OpenTelemetry for its configured
# providers on every request (none is): ~2.4% of a status request (`bench.profile status`).
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class TransportAwareFastAPI(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and TRANSPORT_KEY not in scope:
            scope[TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
        await super().__call__(scope, receive, send)


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """The routers' own routes, in order, as `include_router` would add them with no arguments.

    A router's routes are built (signatures read, validators and response models compiled) when
    its module is imported. `include_router` builds every route again for each app, on its first
    request: about 0.2 s of CPU per app, which every test gateway paid. Routers that need a prefix
    or tags declare them themselves; dependency overrides are not used."""
    for router in routers:
        app.router.routes.extend(router.routes)


class ConnectionDropped(Exception):
    """Raised to cut a response short where the transport is not reachable."""


class DroppedConnection(Response):
    """A response that never arrives: the connection is aborted without a byte written."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport: Any = scope.get(TRANSPORT_KEY)
        if transport is not None:
            transport.abort()
            # Let the server notice the disconnect, so it neither logs nor answers for us.
            await asyncio.sleep(0.05)
            return
        # Another server: start a response and break it off; clients see a broken connection.
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
        )
        raise ConnectionDropped("response dropped on purpose by the simulator")
