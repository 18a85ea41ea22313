"""Property: after any sequence of payments, duplicate results, late successes and
transfers, the books verify clean, every wallet's balance is the sum of its statement, and
every COMPLETE invoice was credited exactly once with its net amount."""

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pesagate.config import Settings
from pesagate.db import Database
from tests.ledger.books import Books

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("pay"),
            st.integers(10, 5_000),
            st.sampled_from(["BUSINESS-PAYS", "CUSTOMER-PAYS"]),
        ),
        st.tuples(st.just("fail"), st.integers(10, 5_000), st.just("")),
        st.tuples(st.just("fail_then_pay"), st.integers(10, 5_000), st.just("")),
        st.tuples(st.just("pay_twice"), st.integers(10, 5_000), st.just("")),
        st.tuples(st.just("transfer_out"), st.integers(1, 900_000), st.just("")),
        st.tuples(st.just("transfer_back"), st.integers(1, 900_000), st.just("")),
        st.tuples(st.just("concurrent_results"), st.integers(10, 5_000), st.just("")),
    ),
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_books_stay_true_under_any_sequence(db_url, ops):
    asyncio.run(run_sequence(db_url, ops))


async def run_sequence(db_url, ops):
    """Each example is a new merchant in the same database, so the global checks of
    `ledger verify` also cover everything the earlier examples left behind."""
    db = Database(db_url)
    try:
        await check_sequence(Books(db, Settings(database_url=db_url)), ops)
    finally:
        await db.dispose()


async def check_sequence(books, ops):
    business, settlement, working = await books.merchant()
    completed: dict[int, int] = {}  # invoice pk -> net credited (cents)
    for op, amount, tariff in ops:
        if op in ("pay", "pay_twice", "fail_then_pay", "fail", "concurrent_results"):
            invoice_pk = await books.invoice(business, amount, tariff or "BUSINESS-PAYS")
            if op == "fail":
                await books.fail(invoice_pk)
                continue
            if op == "fail_then_pay":
                await books.fail(invoice_pk, "NO_RESULT")
            if op == "concurrent_results":
                results = await asyncio.gather(*(books.complete(invoice_pk) for _ in range(4)))
                assert results.count(True) == 1
            else:
                assert await books.complete(invoice_pk)
            if op == "pay_twice":
                assert not await books.complete(invoice_pk)
            invoice = await books.invoice_row(invoice_pk)
            completed[invoice_pk] = invoice.net_amount_minor
        elif op == "transfer_out":
            await books.transfer(settlement, working, amount)
        else:
            await books.transfer(working, settlement, amount)

    for invoice_pk in completed:
        assert await books.collection_entries(invoice_pk) == 1
    settle_balance, settle_available = await books.balances(settlement)
    work_balance, _ = await books.balances(working)
    assert settle_balance == await books.statement_sum(settlement)
    assert work_balance == await books.statement_sum(working)
    assert settle_balance + work_balance == sum(completed.values())  # transfers move, not make
    assert settle_available >= 0
    assert await books.findings() == []
