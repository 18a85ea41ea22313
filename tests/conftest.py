import os
from collections.abc import Iterator
from typing import Any

import pytest

from pesagate.accounts import passwords
from pesagate.kit.logs import configure_logging
from tests.fixtures import databases
from tests.fixtures.databases import (
    db,
    db_backend,
    db_url,
    empty_db_url,
    postgres_server,
    sqlite_template,
)
from tests.fixtures.servers import CallbackReceiver

__all__ = [
    "callback_receiver",
    "db",
    "db_backend",
    "db_url",
    "empty_db_url",
    "postgres_server",
    "sqlite_template",
]

# Settings of the test harness itself, which the gateway ignores.
HARNESS_SETTINGS = ("PESAGATE_TEST_POSTGRES_URL", "PESAGATE_FUZZ_EXAMPLES")


def pytest_configure(config: pytest.Config) -> None:
    forget_ambient_settings()
    # Route structlog through stdlib logging, so pytest captures it per test.
    configure_logging("console", "INFO", to_stderr=False)
    # Dashboard users made by tests outside an app (tests/fixtures/dashboard.py); gateways
    # started with FAST_GATEWAY choose the same.
    passwords.use("minimal")
    if workerinput := getattr(config, "workerinput", None):
        databases.adopt_postgres(workerinput["pesagate_postgres"])


def forget_ambient_settings() -> None:
    """In-process tests build `Settings()` from the environment: a developer's exported
    PESAGATE_* must not change what they see (subprocesses get `cli_env()` likewise)."""
    for name in [n for n in os.environ if n.startswith("PESAGATE_")]:
        if name not in HARNESS_SETTINGS:
            del os.environ[name]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist controller: every worker uses the PostgreSQL found here once."""
    node.workerinput["pesagate_postgres"] = databases.describe_postgres()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.fixtures.scheduling import CampaignScheduling  # needs pytest-xdist

    return CampaignScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    output = getattr(node, "workeroutput", {})
    if output.get("pesagate_postgres_used"):
        databases.note_postgres_used()
    # Dropped by the controller at its end: a worker's own end may be cut short.
    databases.take_over_databases(output.get("pesagate_postgres_databases", []))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if workeroutput := getattr(session.config, "workeroutput", None):
        workeroutput["pesagate_postgres_used"] = databases.postgres_was_used()
        workeroutput["pesagate_postgres_databases"] = databases.hand_over_databases()


def pytest_unconfigure(config: pytest.Config) -> None:
    databases.close_postgres()


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if summary := databases.postgres_summary():
        terminalreporter.write_line(summary, red="SKIPPED" in summary, bold=True)
