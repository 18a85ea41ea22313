"""A real gateway for tests: a migrated database (SQLite and PostgreSQL), uvicorn on a random
port, the embedded simulator at /sim with fast timings, the worker running in-process."""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kulmipay import APIService
from sqlalchemy import select

from pesagate.app import create_app
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.phones import to_safaricom_msisdn
from pesagate.models import Environment, Invoice, MpesaCallback
from pesagate.services import NewMerchant, create_merchant
from pesagate.simulator import SimulatorSettings
from tests.fixtures.browser import browser, chromium  # noqa: F401 (fixtures of browser tests)
from tests.fixtures.daraja import DarajaTestClient
from tests.fixtures.servers import SHARED_SSL_CONTEXT, UvicornThread, bound_socket, wait_until

FAST_GATEWAY = {
    "stk_prompt_ttl_s": 1.0,
    "reconcile_grace_s": 0.3,
    "reconcile_max_s": 5.0,
    "reconcile_backoff_s": 0.2,
    "worker_poll_s": 0.05,
    # Users' passwords hashed with argon2id at its cheapest (a real hash costs ~0.2 CPU-s).
    "dashboard_password_hashing": "minimal",
}
# Customers answer at once; `Gateway.push` holds them until the push has answered.
FAST_SIMULATOR = {
    "delay_min_s": 0.0,
    "delay_max_s": 0.0,
    "prompt_ttl_s": 1.0,
    "late_callback_s": 2.5,
}


@dataclass
class Merchant:
    business_id: str
    public_key: str
    secret_key: str
    wallet_id: str

    @classmethod
    def from_new(cls, new: NewMerchant) -> "Merchant":
        return cls(
            new.business.business_id,
            new.keys.public_key,
            new.keys.secret_key,
            new.settlement_wallet.wallet_id,
        )


@dataclass
class Gateway:
    url: str
    db_url: str
    merchant: Merchant
    other: Merchant
    sim: DarajaTestClient

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(
            base_url=self.api,
            headers=headers,
            timeout=30,
            trust_env=False,
            verify=SHARED_SSL_CONTEXT,
        )

    def sdk(self, merchant: Merchant | None = None, *, public_only: bool = False) -> APIService:
        merchant = merchant or self.merchant
        if public_only:
            return APIService(publishable_key=merchant.public_key, base_url=self.api)
        return APIService(
            token=merchant.secret_key, publishable_key=merchant.public_key, base_url=self.api
        )

    def push(
        self, phone: str, amount: Any = 100, merchant: Merchant | None = None, **fields: Any
    ) -> dict[str, Any]:
        """An STK push whose customer acts only once the push has answered, so that the push's
        own answer is stored before any result callback (as with a real customer, who takes
        seconds) and tests can expect PENDING -> PROCESSING -> final."""
        merchant = merchant or self.merchant
        with self.holding(phone), self.client(merchant.secret_key) as client:
            response = client.post(
                "/payment/mpesa-stk-push/", json={"phone_number": phone, "amount": amount, **fields}
            )
        assert response.status_code == 200, response.text
        return response.json()

    @contextmanager
    def holding(self, phone: str) -> Iterator[None]:
        """The simulated customer at `phone` waits until the block ends before acting."""
        msisdn = to_safaricom_msisdn(str(phone))
        if msisdn is None:  # not a phone M-Pesa would prompt
            yield
            return
        self.sim.control("POST", f"/customers/{msisdn}", json={"hold": True})
        try:
            yield
        finally:
            self.sim.control("POST", f"/customers/{msisdn}/release")

    def status(self, invoice_id: str, merchant: Merchant | None = None) -> dict[str, Any]:
        merchant = merchant or self.merchant
        with self.client(merchant.secret_key) as client:
            response = client.post("/payment/status/", json={"invoice_id": invoice_id})
        assert response.status_code == 200, response.text
        return response.json()["invoice"]

    def wait_final(self, invoice_id: str, timeout_s: float = 40) -> dict[str, Any]:
        return wait_until(
            lambda: (inv := self.status(invoice_id))["state"] in ("COMPLETE", "FAILED") and inv,
            timeout_s,
            what=f"invoice {invoice_id} to be final",
        )

    def query(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(session)` against the gateway's database (a separate connection)."""

        async def go() -> Any:
            db = Database(self.db_url)
            try:
                async with db.read() as session:
                    return await fn(session)
            finally:
                await db.dispose()

        return asyncio.run(go())

    def invoice_row(self, invoice_id: str) -> Invoice:
        return self.query(
            lambda s: s.scalar(select(Invoice).where(Invoice.invoice_id == invoice_id))
        )

    def callbacks(self, invoice_id: str) -> list[MpesaCallback]:
        """The invoice's STK result callbacks, oldest first (not the Transaction Status Results
        stored beside them, noted "transaction status")."""

        async def fn(session: Any) -> list[MpesaCallback]:
            invoice = await session.scalar(select(Invoice).where(Invoice.invoice_id == invoice_id))
            rows = await session.scalars(
                select(MpesaCallback)
                .where(
                    MpesaCallback.invoice_id == invoice.id,
                    MpesaCallback.note.is_(None)
                    | MpesaCallback.note.not_like("transaction status%"),
                )
                .order_by(MpesaCallback.id)
            )
            return list(rows.all())

        return self.query(fn)


def make_merchants(
    db_url: str, environment: Environment = Environment.SANDBOX
) -> tuple[Merchant, Merchant]:
    async def go() -> tuple[Merchant, Merchant]:
        db = Database(db_url)
        try:
            async with db.transaction() as session:
                first = await create_merchant(session, "Mama Mboga Store", environment)
                second = await create_merchant(session, "Other Shop", environment)
            return Merchant.from_new(first), Merchant.from_new(second)
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture
def start_gateway(db_url: str) -> Iterator[Callable[..., Gateway]]:
    """Start a gateway with setting overrides; stopped at the end of the test."""
    servers: list[tuple[UvicornThread, DarajaTestClient]] = []
    merchant, other = make_merchants(db_url)

    def start(simulator: dict[str, Any] | None = None, **overrides: Any) -> Gateway:
        sock = bound_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = Settings(database_url=db_url, public_url=url, **{**FAST_GATEWAY, **overrides})
        sim_settings = SimulatorSettings(**{**FAST_SIMULATOR, **(simulator or {})})
        server = UvicornThread(
            create_app(settings, simulator_settings=sim_settings), sock
        ).__enter__()
        sim = DarajaTestClient(f"{url}/sim")
        servers.append((server, sim))
        return Gateway(url, db_url, merchant, other, sim)

    yield start
    for server, sim in servers:
        sim.close()
        server.__exit__()


@pytest.fixture
def gateway(start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway()
