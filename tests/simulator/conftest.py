import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pesagate.simulator import SimulatorSettings, create_simulator_app
from tests.fixtures.daraja import DarajaTestClient
from tests.fixtures.servers import UvicornThread

# Fast timings so that scenarios finish in about a second; the defaults are checked separately.
FAST = {"delay_min_s": 0.0, "delay_max_s": 0.0, "prompt_ttl_s": 1.0, "late_callback_s": 1.5}

SimFactory = Callable[..., DarajaTestClient]


@pytest.fixture
def make_sim() -> Iterator[SimFactory]:
    """Start a simulator under uvicorn with the given settings (and clock); returns a client
    for it."""
    started: list[tuple[UvicornThread, DarajaTestClient]] = []

    def start(clock: Callable[[], float] = time.monotonic, **settings: Any) -> DarajaTestClient:
        app = create_simulator_app(SimulatorSettings(**{**FAST, **settings}), clock)
        server = UvicornThread(app).__enter__()
        client = DarajaTestClient(server.url)
        started.append((server, client))
        return client

    yield start
    for server, client in started:
        client.close()
        server.__exit__()


@pytest.fixture
def sim(make_sim: SimFactory) -> DarajaTestClient:
    return make_sim()
