"""The long-lived objects a process shares: database, HTTP client, Daraja client, caches.

Built once per process (by the app's lifespan or the worker command) and closed at shutdown.
"""

from dataclasses import dataclass, field

import httpx
import structlog
from httpx_aiohttp import AiohttpTransport

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.idempotency.service import PRUNE_JOB, Pruner
from pesagate.kit.clock import utc_now
from pesagate.ledger.service import RELEASE_JOB
from pesagate.ledger.tasks import ClearingReleaser
from pesagate.merchants.auth import KeyCache
from pesagate.merchants.ratelimit import RateLimiter
from pesagate.mpesa.client import DarajaClient, DarajaConfig
from pesagate.payments.service import RECONCILE_JOB
from pesagate.payments.tasks import Reconciler
from pesagate.webhooks.delivery import Deliverer
from pesagate.webhooks.emit import DELIVERY_JOB
from pesagate.worker.jobs import schedule
from pesagate.worker.runner import Handler, Worker

log = structlog.get_logger("pesagate.services")


def daraja_config(settings: Settings) -> DarajaConfig:
    return DarajaConfig(
        base_url=settings.effective_mpesa_base_url,
        consumer_key=settings.mpesa_consumer_key,
        consumer_secret=settings.mpesa_consumer_secret,
        shortcode=settings.mpesa_shortcode,
        passkey=settings.mpesa_passkey,
        transaction_type=settings.mpesa_transaction_type,
        party_b=settings.mpesa_party_b,
        timeout_s=settings.mpesa_timeout_s,
    )


@dataclass
class Services:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    daraja: DarajaClient
    deliverer: Deliverer
    rate_limiter: RateLimiter
    key_cache: KeyCache = field(default_factory=KeyCache)

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        db = Database(settings.database_url)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)  # the transport's
        http = httpx.AsyncClient(
            timeout=settings.mpesa_timeout_s,
            trust_env=False,
            # httpx's API over aiohttp's connections: httpcore's pool was ~11% of an STK
            # push's CPU (bench/profile.py push); the client code and its tests stay httpx.
            transport=AiohttpTransport(limits=limits, trust_env=False),
        )
        daraja = DarajaClient(daraja_config(settings), http)
        limiter = RateLimiter(settings.rate_limit, settings.redis_url)
        return cls(settings, db, http, daraja, Deliverer(db, settings), limiter)

    def job_handlers(self) -> dict[str, Handler]:
        return {
            RECONCILE_JOB: Reconciler(self.db, self.daraja, self.settings),
            RELEASE_JOB: ClearingReleaser(self.db),
            DELIVERY_JOB: self.deliverer,
            PRUNE_JOB: Pruner(self.db),
        }

    async def schedule_periodic_jobs(self) -> None:
        """Jobs that reschedule themselves; one row each, whatever the number of workers.
        A database that is down now must not keep the process from starting (readiness says
        so); the next start schedules them."""
        try:
            async with self.db.transaction() as session:
                await schedule(session, PRUNE_JOB, f"periodic:{PRUNE_JOB}", utc_now(), {})
        except Exception:
            log.exception("could not schedule periodic jobs")

    def worker(self) -> Worker:
        return Worker(
            self.db,
            self.job_handlers(),
            lease_s=self.settings.worker_lease_s,
            poll_s=self.settings.worker_poll_s,
        )

    async def aclose(self) -> None:
        await self.deliverer.aclose()
        await self.http.aclose()
        await self.db.dispose()
