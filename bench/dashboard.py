"""The dashboard's pages with 100,000 invoices in the business (issue 16: "pages render in
under 300 ms"): a benchmark, not a test. Seeds the invoices in bulk, signs in, and times each
page in process (httpx over ASGI: no network, no server threads), median and worst of N.

    .venv/bin/python -m bench.dashboard [--postgresql] [--invoices 100000] [--rounds 15]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import drop_database, fresh_database, prepare, seed_invoices
from pesagate.accounts import service as accounts
from pesagate.app import create_app
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.merchants import service as merchants
from pesagate.models import InvoiceState, Role
from tests.fixtures.dashboard import PASSWORD, csrf_of

TARGET_MS = 300.0


async def owner_of(url: str, business_pk: int) -> str:
    db = Database(url)
    try:
        business = await merchants.business_by_pk(db, business_pk)
        await accounts.create_user(
            db, "bench@shop.example", PASSWORD, business.business_id, Role.OWNER
        )
        return business.business_id
    finally:
        await db.dispose()


def run(kind: str, invoices: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        url = fresh_database(kind, Path(workdir))  # runs its own event loop
        try:
            asyncio.run(measure(kind, url, invoices, rounds))
        finally:
            drop_database(url)


async def measure(kind: str, url: str, invoices: int, rounds: int) -> None:
    merchant = await prepare(url)
    started = time.perf_counter()
    await seed_invoices(url, merchant, invoices - invoices // 10, InvoiceState.COMPLETE, "")
    seeded = await seed_invoices(url, merchant, invoices // 10, InvoiceState.FAILED, "")
    print(f"{kind}: {invoices} invoices seeded in {time.perf_counter() - started:.1f} s")
    business_id = await owner_of(url, merchant.business_pk)
    await time_pages(url, business_id, seeded[0][0], rounds)


async def time_pages(url: str, business_id: str, invoice_id: str, rounds: int) -> None:
    app = create_app(Settings(database_url=url), run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench/dashboard") as http:
        form = await http.get("/login")
        signed = await http.post(
            "/login",
            data={"email": "bench@shop.example", "password": PASSWORD, "csrf": csrf_of(form.text)},
        )
        assert signed.status_code == 303, signed.text
        base = f"/b/{business_id}"
        pages = {
            "overview": f"{base}/",
            "payments": f"{base}/payments/",
            "payments page 1000": f"{base}/payments/?page=1000",
            "payments FAILED": f"{base}/payments/?state=FAILED",
            "payments by phone": f"{base}/payments/?phone=0712345678",
            "payment detail": f"{base}/payments/{invoice_id}/",
            "wallets": f"{base}/wallets/",
        }
        print(f"{'page':<22}{'median ms':>10}{'worst ms':>10}  under {TARGET_MS:.0f} ms")
        for name, path in pages.items():
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                answer = await http.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
            median = statistics.median(times)
            verdict = "yes" if median < TARGET_MS else "NO"
            print(f"{name:<22}{median:>10.1f}{max(times):>10.1f}  {verdict}")
        started = time.perf_counter()
        exported = await http.get(f"{base}/payments.csv")
        lines = exported.text.count("\n") - 1
        print(f"CSV export of {lines} rows: {(time.perf_counter() - started):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    kind = "postgresql" if args.postgresql else "sqlite"
    run(kind, args.invoices, args.rounds)


if __name__ == "__main__":
    main()
