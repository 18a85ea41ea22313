"""Retention of callbacks that spoke for no invoice (unknown tokens, forbidden sources): a
periodic job deletes them after `PESAGATE_CALLBACK_RETENTION_DAYS`. An invoice's callbacks
are evidence and are kept as long as the invoice."""

from datetime import timedelta

from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.payments import repository
from pesagate.worker.runner import ClaimedJob, RunAgainAt

PRUNE_JOB = "prune_callbacks"
PRUNE_EVERY_S = 3_600.0
PRUNE_BATCH = 1_000


async def prune_refused(db: Database, retention_s: float) -> int:
    """Delete old callbacks that spoke for no invoice, in small batches (a big delete would
    hold SQLite's write lock). Callbacks of real invoices are evidence and are kept."""
    cutoff = utc_now() - timedelta(seconds=retention_s)
    deleted = 0
    while True:
        async with db.transaction() as session:
            count = await repository.delete_refused_callbacks(session, cutoff, PRUNE_BATCH)
        deleted += count
        if count < PRUNE_BATCH:
            return deleted


class CallbackPruner:
    """A periodic job: prunes refused callbacks past their retention, then reschedules."""

    def __init__(self, db: Database, retention_s: float) -> None:
        self.db = db
        self.retention_s = retention_s

    async def __call__(self, job: ClaimedJob) -> RunAgainAt:
        await prune_refused(self.db, self.retention_s)
        return RunAgainAt(utc_now() + timedelta(seconds=PRUNE_EVERY_S))
