"""The gateway application: merchant API, Daraja callbacks, health and metrics, the in-process
worker, and (in sandbox) the embedded simulator at `/sim`."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

from pesagate import __version__, metrics, openapi
from pesagate.accounts import passwords
from pesagate.checkout import endpoints as checkout_endpoints
from pesagate.checkout import pages as checkout_pages
from pesagate.config import Settings
from pesagate.dashboard import actions as dashboard_actions
from pesagate.dashboard import operator as dashboard_operator
from pesagate.dashboard import pages as dashboard_pages
from pesagate.dashboard import refunds as dashboard_refunds
from pesagate.dashboard import settings as dashboard_settings
from pesagate.dashboard import team as dashboard_team
from pesagate.dashboard import wallets as dashboard_wallets
from pesagate.dashboard import webhooks as dashboard_webhooks
from pesagate.db import ping
from pesagate.http import InputGuardMiddleware, RequestContextMiddleware, install_error_handlers
from pesagate.kit.asgi import NO_TELEMETRY, TransportAwareFastAPI, add_routes
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.kit.logs import configure_logging
from pesagate.kit.responses import Health, NotReady
from pesagate.kit.runtime import tune_gc
from pesagate.ledger import endpoints as ledger_endpoints
from pesagate.payments import callback_endpoint
from pesagate.payments import endpoints as payment_endpoints
from pesagate.refunds import callback_endpoint as reversal_callback_endpoint
from pesagate.refunds import endpoints as refund_endpoints
from pesagate.services import Services
from pesagate.simulator import SimulatorSettings, create_simulator_app
from pesagate.webhooks import endpoints as webhook_endpoints

SIMULATOR_MOUNT = "/sim"


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool | None = None,
    simulator_settings: SimulatorSettings | None = None,
) -> TransportAwareFastAPI:
    settings = settings or Settings()
    passwords.use(settings.dashboard_password_hashing)
    run_worker = settings.run_worker if run_worker is None else run_worker
    services = Services.build(settings)
    simulator_app = (
        create_simulator_app(simulator_settings or SimulatorSettings())
        if settings.simulator_enabled
        else None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = None
        passwords.prepare()
        if run_worker:
            await services.schedule_periodic_jobs()
            worker = asyncio.create_task(services.worker().run(stop))
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            if simulator_app is not None:
                await simulator_app.state.simulator.aclose()
            await services.aclose()

    app = TransportAwareFastAPI(
        title="pesagate",
        version=__version__,
        description="Self-hosted M-Pesa STK push gateway, wire-compatible with KulmiPay v1.",
        lifespan=lifespan,
        redirect_slashes=False,
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.db = services.db
    app.state.key_cache = services.key_cache
    install_error_handlers(app)
    openapi.install(app)
    app.add_middleware(InputGuardMiddleware, body_timeout_s=settings.body_read_timeout_s)
    app.add_middleware(RequestContextMiddleware)
    # Daraja's result routes first: Starlette tries routes in order, and every callback was
    # matched against the ~110 routes before them (84 us each, measured).
    add_routes(app, callback_endpoint.router, reversal_callback_endpoint.router)
    add_routes(
        app,
        payment_endpoints.router,
        ledger_endpoints.router,
        webhook_endpoints.router,
        checkout_endpoints.router,
        checkout_pages.router,
    )
    app.mount("/static", StaticFiles(directory=checkout_pages.STATIC_DIR), name="static")
    add_routes(
        app,
        dashboard_actions.router,
        dashboard_team.router,
        dashboard_webhooks.router,
        dashboard_wallets.router,
        dashboard_settings.router,
        dashboard_operator.router,
    )
    if settings.refunds_on:
        add_routes(app, dashboard_refunds.router)
    dashboard_pages.install(app)
    if settings.refunds_on:
        add_routes(app, refund_endpoints.router)
    _add_operational_routes(app, services)
    if simulator_app is not None:
        app.mount(SIMULATOR_MOUNT, simulator_app)
    return app


def from_env() -> TransportAwareFastAPI:
    """The application as configured by the environment, logging included: the factory for
    `uvicorn pesagate.app:from_env --factory` and for `pesagate serve --workers N`."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)
    tune_gc()
    return app


def _add_operational_routes(app: FastAPI, services: Services) -> None:
    @app.get("/healthz", tags=["Operations"], summary="Liveness")
    async def healthz() -> Health:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["Operations"],
        summary="Readiness: the database answers",
        responses={200: {"model": Health}, 503: {"model": NotReady}},
    )
    async def readyz() -> Response:
        try:
            await ping(services.db.engine)
        except Exception as exc:  # any failure means "not ready", never a crash
            return JSONBytesResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        return JSONBytesResponse({"status": "ok"})

    @app.get(
        "/metrics",
        tags=["Operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)
