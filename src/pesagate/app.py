"""The gateway application: health endpoints and, in sandbox, the embedded simulator at `/sim`.

The merchant API (payments, wallets, webhooks) is built on this skeleton by the gateway issues.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pesagate import __version__
from pesagate.config import Settings
from pesagate.db import create_engine, ping
from pesagate.kit.asgi import TransportAwareFastAPI
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.simulator import SimulatorSettings, create_simulator_app

SIMULATOR_MOUNT = "/sim"


def create_app(settings: Settings | None = None) -> TransportAwareFastAPI:
    settings = settings or Settings()
    engine = create_engine(settings.database_url)
    simulator_app = (
        create_simulator_app(SimulatorSettings()) if settings.simulator_enabled else None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if simulator_app is not None:
            await simulator_app.state.simulator.aclose()
        await engine.dispose()

    app = TransportAwareFastAPI(
        title="pesagate",
        version=__version__,
        description="Self-hosted M-Pesa STK push gateway, wire-compatible with KulmiPay v1.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine

    @app.get("/healthz", tags=["Health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["Health"], summary="Readiness: the database answers")
    async def readyz() -> JSONBytesResponse:
        try:
            await ping(engine)
        except Exception as exc:  # any failure means "not ready", never a crash
            return JSONBytesResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        return JSONBytesResponse({"status": "ok"})

    if simulator_app is not None:
        app.mount(SIMULATOR_MOUNT, simulator_app)
    return app
