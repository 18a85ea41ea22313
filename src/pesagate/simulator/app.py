"""The simulator as an ASGI app: standalone (`pesagate simulator`) or mounted at `/sim`."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pesagate import __version__
from pesagate.kit.asgi import NO_TELEMETRY, TransportAwareFastAPI, add_routes
from pesagate.simulator import control, daraja, initiator_api, phone, statement
from pesagate.simulator.engine import Simulator
from pesagate.simulator.settings import SimulatorSettings


def create_simulator_app(
    settings: SimulatorSettings | None = None, clock: Callable[[], float] = time.monotonic
) -> TransportAwareFastAPI:
    """Build the simulator. When mounted inside another app, that app's lifespan must call
    `app.state.simulator.aclose()` on shutdown (Starlette does not run a mount's lifespan).
    `clock`: monotonic seconds for token lifetimes and the Rule 17 window."""
    simulator = Simulator(settings or SimulatorSettings(), clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await simulator.aclose()

    app = TransportAwareFastAPI(
        title="pesagate Daraja simulator",
        version=__version__,
        description="Safaricom Daraja (M-Pesa Express) simulator with a control API.",
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.simulator = simulator
    add_routes(
        app,
        daraja.router,
        statement.router,
        initiator_api.router,
        control.router,
        initiator_api.control_router,
        phone.router,
    )
    return app
