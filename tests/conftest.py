from collections.abc import Iterator

import pytest

from tests.fixtures.databases import db_url, postgres_server, postgres_summary
from tests.fixtures.servers import CallbackReceiver

__all__ = ["callback_receiver", "db_url", "postgres_server"]


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if summary := postgres_summary():
        terminalreporter.write_line(summary, red="SKIPPED" in summary, bold=True)
