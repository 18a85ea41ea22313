"""The clearing release job: a collection's CLEARING lines become AVAILABLE."""

from pesagate.db import Database
from pesagate.ledger.service import InvoiceReleased, release
from pesagate.worker.runner import ClaimedJob, RunAgainAt


class ClearingReleaser:
    def __init__(self, db: Database, on_released: InvoiceReleased) -> None:
        self.db = db
        self.on_released = on_released

    async def __call__(self, job: ClaimedJob) -> RunAgainAt | None:
        await release(self.db, int(job.payload["entry_id"]), self.on_released)
        return None
