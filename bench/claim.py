"""CPU of one worker claim, in process on SQLite: `python -m bench.claim`.

An idle poll (nothing due) and a claim of five due jobs in two lanes of one group, each timed
with `time.process_time()` over a few hundred calls after a warm-up. The claim runs on every
poll of every worker (in `pesagate serve`, twice a second by default; in the test suite's
gateways twenty times a second), so its cost shows even when nothing happens.
"""

import asyncio
import tempfile
import time

from pesagate import migrate
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.worker.jobs import schedule
from pesagate.worker.runner import Worker

CALLS = 400


async def per_claim_ms(worker: Worker) -> float:
    for _ in range(20):
        await worker.claim()
    started = time.process_time()
    for _ in range(CALLS):
        await worker.claim()
        await asyncio.sleep(0.0002)  # the tiny lease below runs out: the jobs are due again
    return (time.process_time() - started) / CALLS * 1000


async def main() -> None:
    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/claim.db"
    await migrate.upgrade(url)
    db = Database(url)
    try:
        print(f"idle poll: {await per_claim_ms(Worker(db, {}, name='idle')):.2f} ms of CPU")
        async with db.transaction() as session:
            for n in range(5):
                lane = f"webhooks:1/endpoint:{n % 2}"
                await schedule(session, "bench", f"job-{n}", utc_now(), {}, lane=lane)
        busy = Worker(db, {}, name="busy", lease_s=0.0001)
        print(f"claim of 5 due jobs: {await per_claim_ms(busy):.2f} ms of CPU")
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
