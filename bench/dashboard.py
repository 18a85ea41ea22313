"""The dashboard's pages with 100,000 invoices in the business (issue 16: "pages render in
under 300 ms"): a benchmark, not a test. Seeds the invoices in bulk (all paid from one phone),
credits `--credited` of them through the ledger's own collection posting (the wallet's
statement, balances and the operator's `ledger verify` then have real postings to read), signs
in an owner and an operator, and times each page in process (httpx over ASGI: no network, no
server threads), median and worst of N.

    .venv/bin/python -m bench.dashboard [--postgresql] [--invoices 100000] [--credited 20000]
        [--rounds 15]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select, text

from bench.harness import drop_database, fresh_database, prepare, seed_invoices
from pesagate.accounts import service as accounts
from pesagate.app import create_app
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.ledger.postings import post_collection
from pesagate.merchants import service as merchants
from pesagate.models import Invoice, InvoiceState, Role
from tests.fixtures.dashboard import PASSWORD, csrf_of

TARGET_MS = 300.0


OWNER, OPERATOR = "bench@shop.example", "ops@shop.example"


async def people_of(url: str, business_pk: int) -> str:
    """An owner of the business and an operator (who also sees it); its business_id."""
    db = Database(url)
    try:
        business = await merchants.business_by_pk(db, business_pk)
        await accounts.create_user(db, OWNER, PASSWORD, business.business_id, Role.OWNER)
        await accounts.create_user(
            db, OPERATOR, PASSWORD, business.business_id, Role.VIEWER, operator=True
        )
        return business.business_id
    finally:
        await db.dispose()


async def credit(url: str, business_pk: int, count: int) -> None:
    """The ledger's own collection posting for `count` COMPLETE invoices, 500 per transaction."""
    db = Database(url)
    try:
        done = 0
        while done < count:
            async with db.transaction() as session:
                batch = (
                    await session.scalars(
                        select(Invoice)
                        .where(
                            Invoice.business_id == business_pk,
                            Invoice.state == InvoiceState.COMPLETE,
                        )
                        .order_by(Invoice.id)
                        .offset(done)
                        .limit(min(500, count - done))
                    )
                ).all()
                for invoice in batch:
                    await post_collection(session, invoice)
            done += len(batch)
            if not batch:
                break
    finally:
        await db.dispose()


async def analyze(url: str) -> None:
    """Table statistics, as autovacuum would have gathered them long before a business had
    100,000 invoices: without them the planner guesses, and a freshly bulk-loaded table is
    read as if it were empty (the phone filter took 520 ms instead of 20)."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(text("ANALYZE"))
    finally:
        await db.dispose()


def run(kind: str, invoices: int, credited: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        url = fresh_database(kind, Path(workdir))  # runs its own event loop
        try:
            asyncio.run(measure(kind, url, invoices, credited, rounds))
        finally:
            drop_database(url)


async def measure(kind: str, url: str, invoices: int, credited: int, rounds: int) -> None:
    merchant = await prepare(url)
    started = time.perf_counter()
    paid = await seed_invoices(url, merchant, invoices - invoices // 10, InvoiceState.COMPLETE, "")
    await seed_invoices(url, merchant, invoices // 10, InvoiceState.FAILED, "")
    print(f"{kind}: {invoices} invoices seeded in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    await credit(url, merchant.business_pk, credited)
    print(f"{credited} credited by the ledger in {time.perf_counter() - started:.1f} s")
    business_id = await people_of(url, merchant.business_pk)
    if kind == "postgresql":
        await analyze(url)
    phone = paid[0][3]
    credited_invoice = paid[0][0]
    await time_pages(url, business_id, merchant.wallet_id, phone, credited_invoice, rounds)


async def signed_in(http: httpx.AsyncClient, email: str) -> None:
    form = await http.get("/login")
    data = {"email": email, "password": PASSWORD, "csrf": csrf_of(form.text)}
    signed = await http.post("/login", data=data)
    assert signed.status_code == 303, signed.text


async def time_pages(
    url: str, business_id: str, wallet_id: str, phone: str, invoice_id: str, rounds: int
) -> None:
    app = create_app(Settings(database_url=url), run_worker=False)
    transport = httpx.ASGITransport(app=app)
    base = f"/b/{business_id}"
    owner_pages = {
        "overview": f"{base}/",
        "payments": f"{base}/payments/",
        "payments page 1000": f"{base}/payments/?page=1000",
        "payments FAILED": f"{base}/payments/?state=FAILED",
        "payments by phone": f"{base}/payments/?phone={phone}",
        "payment detail": f"{base}/payments/{invoice_id}/",
        "wallets": f"{base}/wallets/",
        "wallet statement": f"{base}/wallets/{wallet_id}/",
        "webhooks": f"{base}/webhooks/",
        "team": f"{base}/team/",
        "settings": f"{base}/settings/",
        "developers": f"{base}/developers/",
    }
    print(f"{'page':<22}{'median ms':>10}{'worst ms':>10}  under {TARGET_MS:.0f} ms")
    bench = "http://bench/dashboard"
    async with httpx.AsyncClient(transport=transport, base_url=bench) as http:
        await signed_in(http, OWNER)
        for name, path in owner_pages.items():
            await time_page(http, name, path, rounds)
        started = time.perf_counter()
        exported = await http.get(f"{base}/payments.csv")
        lines = exported.text.count("\n") - 1
        print(f"CSV export of {lines} rows: {(time.perf_counter() - started):.1f} s")
    async with httpx.AsyncClient(transport=transport, base_url=bench) as http:
        await signed_in(http, OPERATOR)
        started = time.perf_counter()
        await http.get("/operator/")  # starts `ledger verify` in the background
        print(f"operator, first load: {(time.perf_counter() - started) * 1000:.0f} ms")
        started = time.perf_counter()
        while 'id="ledger-checking"' in (await http.get("/operator/")).text:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        print(f"ledger verify ended after {time.perf_counter() - started:.1f} s")
        await time_page(http, "operator", "/operator/", rounds)


async def time_page(http: httpx.AsyncClient, name: str, path: str, rounds: int) -> None:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = await http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    median = statistics.median(times)
    verdict = "yes" if median < TARGET_MS else "NO"
    print(f"{name:<22}{median:>10.1f}{max(times):>10.1f}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--credited", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    kind = "postgresql" if args.postgresql else "sqlite"
    run(kind, args.invoices, args.credited, args.rounds)


if __name__ == "__main__":
    main()
