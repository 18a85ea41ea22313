from collections.abc import Iterator

import pytest

from pesagate.kit.logs import configure_logging
from tests.fixtures.databases import db_url, postgres_server, postgres_summary
from tests.fixtures.servers import CallbackReceiver

__all__ = ["callback_receiver", "db_url", "postgres_server"]


def pytest_configure(config: pytest.Config) -> None:
    # Route structlog through stdlib logging, so pytest captures it per test.
    configure_logging("console", "INFO", to_stderr=False)


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if summary := postgres_summary():
        terminalreporter.write_line(summary, red="SKIPPED" in summary, bold=True)
