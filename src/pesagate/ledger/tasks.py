"""The clearing release job: a collection's CLEARING lines become AVAILABLE."""

from pesagate.db import Database
from pesagate.ledger.service import release_clearing
from pesagate.worker.runner import ClaimedJob, RunAgainAt


class ClearingReleaser:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, job: ClaimedJob) -> RunAgainAt | None:
        async with self.db.transaction() as session:
            await release_clearing(session, int(job.payload["entry_id"]))
        return None
