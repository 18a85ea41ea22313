"""Error logging must not hold up the event loop: a 500's traceback is rendered while every
other request of the process waits, in every log format."""

import io
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from pesagate.app import create_app
from pesagate.config import Settings
from pesagate.kit.logs import configure_logging
from tests.fixtures.looplag import LoopLagMonitor, WithLoopMonitor
from tests.fixtures.servers import SHARED_SSL_CONTEXT, UvicornThread, wait_until

ERRORS = 10
# A traceback may take a few milliseconds; this bound is far above that on a loaded machine
# and far below what a blocking renderer costs per error.
MAX_LOOP_STALL_S = 0.5


def app_with_failing_route(tmp_path: Path, monitor: LoopLagMonitor) -> WithLoopMonitor:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/logs.db", simulator="off")
    app = create_app(settings, run_worker=False)

    @app.post("/boom")
    async def boom() -> None:
        raise RuntimeError("the handler failed")

    return WithLoopMonitor(app, monitor)


@pytest.fixture
def log_output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Logging configured as `pesagate serve` does it, into a buffer instead of stderr."""
    root = logging.getLogger()
    saved = root.handlers[:]
    configure_logging(request.param, "INFO", to_stderr=True)
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    configure_logging("console", "INFO", to_stderr=False)
    root.handlers[:] = saved


@pytest.mark.parametrize("log_output", ["console", "json"], indirect=True)
def test_errors_are_logged_without_stalling_the_loop(
    tmp_path: Path, log_output: io.StringIO
) -> None:
    # The loop's own CPU time is what counts: on a loaded machine its thread may also simply
    # not run for a while, which says nothing about the logging.
    monitor = LoopLagMonitor()
    with UvicornThread(app_with_failing_route(tmp_path, monitor)) as server:
        monitor.reset()  # startup is not what this test is about
        with ThreadPoolExecutor(ERRORS) as pool:
            responses = list(pool.map(lambda _: _post_boom(server.url), range(ERRORS)))
        wait_until(lambda: log_output.getvalue().count("unhandled error") >= ERRORS)
    monitor.stop()
    assert monitor.worst_held_s < MAX_LOOP_STALL_S, monitor.report()
    assert {r.status_code for r in responses} == {500}
    assert {r.json()["detail"] for r in responses} == {"A server error occurred."}
    text = log_output.getvalue()
    assert text.count("RuntimeError: the handler failed") == ERRORS
    assert "sk_test_not_a_real_key" not in text  # never locals or headers


def _post_boom(url: str) -> httpx.Response:
    return httpx.post(
        f"{url}/boom",
        headers={"Authorization": "Bearer sk_test_not_a_real_key"},
        timeout=60,
        verify=SHARED_SSL_CONTEXT,
    )
