"""The operator's pages (users with the operator flag only; anyone else gets 404): every
business, the platform's ledger report and `ledger verify`'s result, jobs waiting, running
or dead, and Daraja's health as this process has seen it (calls by outcome)."""

from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import REGISTRY
from starlette.responses import Response

from pesagate.dashboard.web import PREFIX, PageRefused, VisitorDep, page
from pesagate.dependencies import DbDep
from pesagate.kit.money import format_minor
from pesagate.ledger import service as ledger
from pesagate.merchants import service as merchants
from pesagate.payments import history
from pesagate.worker import jobs

router = APIRouter(prefix=PREFIX, include_in_schema=False)
JOBS_SHOWN = 100


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
    findings = await ledger.findings(db)
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
        waiting=waiting,
        dead=dead,
        calls=_daraja_calls(),
        token=request.app.state.services.daraja.token_health(),
        last_push=await history.latest_push(db),
    )
