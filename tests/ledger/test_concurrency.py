"""Concurrency on the real databases: transfers never overdraw, results credit once."""

import asyncio

from pesagate.db import Database


async def fund(books, business, amount_kes):
    invoice_pk = await books.invoice(business, amount_kes)
    assert await books.complete(invoice_pk)
    return invoice_pk


async def test_concurrent_transfers_from_one_wallet_never_overdraw(books, db_url):
    business, settlement, working = await books.merchant()
    await fund(books, business, 1_000)  # net 978.00 after the 2.2% fee
    _balance, available = await books.balances(settlement)
    assert available == 97_800
    # 30 transfers of 50.00 race for 978.00: exactly 19 fit. Each runs on its own engine,
    # like separate API processes would.
    engines = [Database(db_url) for _ in range(6)]
    try:
        results = await asyncio.gather(
            *(
                type(books)(engines[n % len(engines)], books.settings).transfer(
                    settlement, working, 5_000
                )
                for n in range(30)
            )
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert results.count(True) == 19
    _, available = await books.balances(settlement)
    assert available == 97_800 - 19 * 5_000 == 2_800
    assert (await books.balances(working))[1] == 19 * 5_000
    assert await books.findings() == []


async def test_opposite_transfers_do_not_deadlock(books):
    business, settlement, working = await books.merchant()
    await fund(books, business, 1_000)
    await books.transfer(settlement, working, 40_000)
    results = await asyncio.gather(
        *(
            books.transfer(settlement, working, 100)
            if n % 2
            else books.transfer(working, settlement, 100)
            for n in range(20)
        )
    )
    assert all(results)
    assert await books.findings() == []


async def test_concurrent_duplicate_results_credit_once(books, db_url):
    business, settlement, _ = await books.merchant()
    invoice_pk = await books.invoice(business, 500)
    engines = [Database(db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(type(books)(engines[n % 4], books.settings).complete(invoice_pk) for n in range(12))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert results.count(True) == 1
    assert await books.collection_entries(invoice_pk) == 1
    assert (await books.balances(settlement))[0] == 50_000 - 1_100
    assert await books.findings() == []


async def test_late_success_after_failure_credits_once(books):
    business, settlement, _ = await books.merchant()
    invoice_pk = await books.invoice(business, 200)
    assert await books.fail(invoice_pk, "NO_RESULT")
    assert await books.collection_entries(invoice_pk) == 0
    assert await books.complete(invoice_pk)
    assert not await books.complete(invoice_pk)
    assert await books.collection_entries(invoice_pk) == 1
    assert (await books.balances(settlement))[0] == 20_000 - 440
