"""The composition root: the long-lived objects a process shares (database, HTTP client,
Daraja client, caches), the job handlers, and the hooks by which one domain's use case reaches
another's tables without importing it.

Built once per process (by the app's lifespan or the worker command) and closed at shutdown.
"""

import functools
import secrets
import ssl
from dataclasses import dataclass, field

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.accounts.service import add_member
from pesagate.checkout.endpoints import push_in_session, render_link
from pesagate.checkout.service import grant_session
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.idempotency.service import PRUNE_JOB, Pruner
from pesagate.ledger.postings import RELEASE_JOB
from pesagate.ledger.service import InvoicesJson
from pesagate.ledger.tasks import ClearingReleaser
from pesagate.ledger.wallets import open_settlement_wallet
from pesagate.merchants.auth import KeyCache
from pesagate.merchants.keys import KeyPair
from pesagate.merchants.ratelimit import PromptLimiter, RateLimiter
from pesagate.merchants.service import create_business, has_merchants
from pesagate.models import Business, Environment, Role, Wallet
from pesagate.mpesa.client import DarajaClient, DarajaConfig
from pesagate.mpesa.transport import AiohttpTransport
from pesagate.payments.callback_retention import PRUNE_JOB as CALLBACK_PRUNE_JOB
from pesagate.payments.callback_retention import CallbackPruner
from pesagate.payments.endpoints import PushInSession
from pesagate.payments.hooks import invoices_json, mark_cleared
from pesagate.payments.service import RECONCILE_JOB
from pesagate.payments.sessions import GrantSession, RenderLink
from pesagate.payments.tasks import Reconciler
from pesagate.refunds.state import REFUND_JOB
from pesagate.refunds.tasks import RefundProcessor
from pesagate.webhooks.delivery import Deliverer
from pesagate.webhooks.emit import DELIVERY_JOB
from pesagate.webhooks.service import delivery_revived
from pesagate.worker.jobs import Revived, schedule_periodic
from pesagate.worker.runner import Handler, Worker

log = structlog.get_logger("pesagate.services")


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default certificate checks (certifi's CA bundle), read once per process (~20 ms
    of CPU each time), not for each app built (tests build hundreds)."""
    return httpx.create_ssl_context()


DEMO_MERCHANT_NAME = "Demo Shop"
DEMO_OWNER_EMAIL = "owner@demo.shop"
# `pesagate jobs retry`: what reviving a dead job of each kind settles in its domain.
JOBS_REVIVED: dict[str, Revived] = {DELIVERY_JOB: delivery_revived}


@dataclass(frozen=True, slots=True)
class NewMerchant:
    business: Business
    keys: KeyPair
    settlement_wallet: Wallet


async def create_merchant(
    session: AsyncSession, name: str, environment: Environment, short_name: str | None = None
) -> NewMerchant:
    """A business with its keys (merchants) and its settlement wallet (ledger)."""
    new = await create_business(session, name, environment, short_name)
    wallet = await open_settlement_wallet(session, new.business.id)
    return NewMerchant(new.business, new.keys, wallet)


async def open_merchant(
    db: Database, name: str, environment: Environment, short_name: str | None = None
) -> NewMerchant:
    """`pesagate merchant create`."""
    async with db.transaction() as session:
        return await create_merchant(session, name, environment, short_name)


@dataclass(frozen=True, slots=True)
class DemoMerchant:
    merchant: NewMerchant
    owner_email: str
    owner_password: str  # printed once by `pesagate serve`


async def open_demo_merchant_if_empty(db: Database) -> DemoMerchant | None:
    """On a fresh sandbox database, a merchant to try the gateway with at once, and its
    owner's dashboard login."""
    async with db.transaction() as session:
        if await has_merchants(session):
            return None
        new = await create_merchant(session, DEMO_MERCHANT_NAME, Environment.SANDBOX)
        password = secrets.token_urlsafe(12)
        await add_member(session, DEMO_OWNER_EMAIL, password, new.business, Role.OWNER)
        return DemoMerchant(new, DEMO_OWNER_EMAIL, password)


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
        initiator=settings.mpesa_initiator,
        initiator_password=settings.mpesa_initiator_password,
        certificate=settings.certificate(),
    )


@dataclass
class Services:
    settings: Settings
    db: Database
    http: AiohttpTransport
    daraja: DarajaClient
    deliverer: Deliverer
    rate_limiter: RateLimiter
    callback_refusals: RateLimiter
    prompt_limiter: PromptLimiter
    key_cache: KeyCache = field(default_factory=KeyCache)
    # Dashboard sign-ins per client address (the dashboard reads it from app.state.services).
    sign_in_limiter: RateLimiter | None = None
    # Statement lines embed their invoices as payments renders them.
    statement_invoices: InvoicesJson = invoices_json
    # Payments' routes reach hosted checkout (a layer above) through these.
    grant_session: GrantSession = grant_session
    push_in_session: PushInSession = push_in_session
    render_link: RenderLink = render_link

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        db = Database(settings.database_url)
        http = AiohttpTransport(ssl_context=default_ssl_context(), max_connections=100)
        daraja = DarajaClient(daraja_config(settings), http)
        limiter = RateLimiter(settings.rate_limit, settings.redis_url)
        refusals = RateLimiter(settings.callback_refusal_limit, settings.redis_url)
        prompts = PromptLimiter(
            settings.prompt_limit_per_key, settings.prompt_limit_per_phone, limiter
        )
        sign_ins = RateLimiter(settings.dashboard_login_limit_per_address, settings.redis_url)
        return cls(
            settings,
            db,
            http,
            daraja,
            Deliverer(db, settings),
            limiter,
            refusals,
            prompts,
            sign_in_limiter=sign_ins,
        )

    def job_handlers(self) -> dict[str, Handler]:
        return {
            RECONCILE_JOB: Reconciler(self.db, self.daraja, self.settings),
            REFUND_JOB: RefundProcessor(self.db, self.daraja, self.settings),
            RELEASE_JOB: ClearingReleaser(self.db, on_released=mark_cleared),
            DELIVERY_JOB: self.deliverer,
            PRUNE_JOB: Pruner(self.db),
            CALLBACK_PRUNE_JOB: CallbackPruner(
                self.db, self.settings.callback_retention_days * 86_400
            ),
        }

    async def schedule_periodic_jobs(self) -> None:
        """Jobs that reschedule themselves; one row each, whatever the number of workers.
        A database that is down now must not keep the process from starting (readiness says
        so); the next start schedules them."""
        try:
            await schedule_periodic(self.db, [PRUNE_JOB, CALLBACK_PRUNE_JOB])
        except Exception:
            log.exception("could not schedule periodic jobs")

    def worker(self) -> Worker:
        return Worker(
            self.db,
            self.job_handlers(),
            lease_s=self.settings.worker_lease_s,
            poll_s=self.settings.worker_poll_s,
            concurrency=self.settings.worker_concurrency,
            lane_slots=self.settings.worker_lane_slots,
            job_timeout_s=self.settings.worker_job_timeout_s,
            max_failures=self.settings.worker_max_failures,
        )

    async def aclose(self) -> None:
        await self.deliverer.aclose()
        await self.http.aclose()
        await self.db.dispose()
