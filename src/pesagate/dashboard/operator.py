"""The operator's pages (users with the operator flag only; anyone else gets 404): every
business, the platform's ledger report and `ledger verify`'s result, jobs waiting, running
or dead, and Daraja's health as this process has seen it (calls by outcome).

`ledger verify` reads every posting (1.4 s with 20,000 credited payments on SQLite), so the page
never waits for it long: it shows this process's latest result with its age, and starts a new
check, in a thread of its own, once that is older than a minute."""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, Request
from prometheus_client import REGISTRY
from starlette.responses import Response

from pesagate.dashboard.web import PREFIX, PageRefused, VisitorDep, page
from pesagate.db import Database
from pesagate.dependencies import DbDep
from pesagate.kit.money import format_minor
from pesagate.ledger import service as ledger
from pesagate.merchants import service as merchants
from pesagate.payments import history
from pesagate.worker import jobs

router = APIRouter(prefix=PREFIX, include_in_schema=False)
log = structlog.get_logger("pesagate.dashboard")
JOBS_SHOWN = 100
FINDINGS_SHOWN = 50  # of ledger verify's findings; `pesagate ledger verify` lists them all
CHECK_EVERY_S = 60.0
CHECK_WAIT_S = 0.1  # how long a page waits for a running check before it shows "checking"


@dataclass
class LedgerCheck:
    """This process's latest `ledger verify`: its findings, when it ended, the one running."""

    findings: list[str] | None = None
    checked_at: float = 0.0
    running: "asyncio.Task[None] | None" = field(default=None, repr=False)

    async def latest(self, database_url: str) -> tuple[list[str] | None, float | None]:
        """The findings and their age in seconds (None, None while the first check runs)."""
        stale = time.monotonic() - self.checked_at > CHECK_EVERY_S
        if (self.findings is None or stale) and self.running is None:
            self.running = asyncio.create_task(self._check(database_url))
        if self.running is not None:
            await asyncio.wait({self.running}, timeout=CHECK_WAIT_S)
        if self.findings is None:
            return None, None
        return self.findings, time.monotonic() - self.checked_at

    async def _check(self, database_url: str) -> None:
        try:
            self.findings = await asyncio.to_thread(_verify_apart, database_url)
        except Exception as failed:  # shown to the operator, not lost in a task
            log.exception("ledger_check_failed")
            self.findings = [f"The check itself failed: {type(failed).__name__}: {failed}"]
        finally:
            self.checked_at = time.monotonic()
            self.running = None


def _verify_apart(database_url: str) -> list[str]:
    """`ledger verify` in a thread with its own event loop and connections: its Python work
    then takes turns with the serving loop instead of holding it for as long as it runs."""

    async def verify() -> list[str]:
        db = Database(database_url)
        try:
            return await ledger.findings(db)
        finally:
            await db.dispose()

    return asyncio.run(verify())


def _ledger_check(request: Request) -> LedgerCheck:
    state = request.app.state
    if not hasattr(state, "ledger_check"):
        state.ledger_check = LedgerCheck()
    check: LedgerCheck = state.ledger_check
    return check


def _daraja_calls() -> list[tuple[str, str, int]]:
    """(call, outcome, count) from this process's Prometheus counter."""
    calls = []
    for metric in REGISTRY.collect():
        if metric.name != "pesagate_daraja_calls":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                labels = sample.labels
                calls.append((labels["call"], labels["outcome"], int(sample.value)))
    return sorted(calls)


@router.get("/operator/")
async def operator(request: Request, visitor: VisitorDep, db: DbDep) -> Response:
    if not visitor.is_operator:
        raise PageRefused(404, "Not found", "There is no such page.")
    rows, platform = await ledger.report(db)
    database_url = request.app.state.settings.database_url
    findings, age_s = await _ledger_check(request).latest(database_url)
    waiting = await jobs.listed(db, dead=False, kind=None, limit=JOBS_SHOWN)
    dead = await jobs.listed(db, dead=True, kind=None, limit=JOBS_SHOWN)
    report: list[Any] = [(row[0], row[1], *(format_minor(v or 0) for v in row[2:])) for row in rows]
    return page(
        "operator.html",
        visitor=visitor,
        access=None,
        businesses=await merchants.list_merchants(db),
        report=report,
        platform=[(code, format_minor(total or 0)) for code, total in platform],
        findings=findings,
        findings_shown=FINDINGS_SHOWN,
        checked_s=None if age_s is None else round(age_s),
        waiting=waiting,
        dead=dead,
        calls=_daraja_calls(),
        token=request.app.state.services.daraja.token_health(),
        last_push=await history.latest_push(db),
    )
