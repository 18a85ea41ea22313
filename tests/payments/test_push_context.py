"""A push's context (the business's terms and wallets) is kept per process for
PUSH_CONTEXT_TTL_S: a change made through this process applies to the next push, one made
elsewhere within the time to live, and a wallet opened anywhere can be paid into at once."""

import pytest
from sqlalchemy import update

from pesagate.db import Database
from pesagate.ledger.wallets import open_wallet
from pesagate.merchants import service as merchants
from pesagate.merchants.service import PaymentSettingsUpdate
from pesagate.models import Business, WalletType
from pesagate.payments import service as payments
from pesagate.payments.service import PUSH_CONTEXT_TTL_S, push_context
from tests.fixtures.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def business_id(books, business_pk: int) -> str:
    context = await payments.payment_context(books.db, business_pk)
    return context.business.business_id


async def test_a_context_is_kept_for_its_time_to_live(books, clock):
    business_pk, _, _ = await books.merchant()
    first = await push_context(books.db, business_pk, None, clock)
    clock.advance(PUSH_CONTEXT_TTL_S / 2)
    assert await push_context(books.db, business_pk, None, clock) is first
    clock.advance(PUSH_CONTEXT_TTL_S)
    assert await push_context(books.db, business_pk, None, clock) is not first


async def test_a_change_made_through_this_process_applies_to_the_next_push(books, clock):
    business_pk, _, _ = await books.merchant()
    before = await push_context(books.db, business_pk, None, clock)
    change = PaymentSettingsUpdate(fee_rate_ppm=before.business.fee_rate_ppm + 1_000)
    await merchants.change_settings(books.db, await business_id(books, business_pk), change)
    after = await push_context(books.db, business_pk, None, clock)
    assert after.business.fee_rate_ppm == before.business.fee_rate_ppm + 1_000
    await merchants.change_profile(books.db, business_pk, "Renamed Shop", "Renamed")
    assert (await push_context(books.db, business_pk, None, clock)).business.short_name == "Renamed"


async def test_a_change_made_elsewhere_applies_within_the_time_to_live(books, clock, db_url):
    business_pk, _, _ = await books.merchant()
    before = await push_context(books.db, business_pk, None, clock)
    elsewhere = Database(db_url)  # another node (or the CLI) on the same database
    try:
        async with elsewhere.transaction() as session:
            await session.execute(
                update(Business).where(Business.id == business_pk).values(fee_rate_ppm=7_777)
            )
    finally:
        await elsewhere.dispose()
    assert (await push_context(books.db, business_pk, None, clock)) is before
    clock.advance(PUSH_CONTEXT_TTL_S + 0.001)
    assert (await push_context(books.db, business_pk, None, clock)).business.fee_rate_ppm == 7_777


async def test_a_wallet_opened_after_the_context_was_kept_is_found(books, clock):
    business_pk, _, _ = await books.merchant()
    kept = await push_context(books.db, business_pk, None, clock)
    async with books.db.transaction() as session:
        wallet, _ = await open_wallet(session, business_pk, "KES", WalletType.WORKING, "new")
    assert wallet.wallet_id not in kept.wallets
    found = await push_context(books.db, business_pk, wallet.wallet_id, clock)
    assert wallet.wallet_id in found.wallets
    # A wallet nobody has is looked for, and still unknown: validation refuses it.
    assert "WXXXXXX" not in (await push_context(books.db, business_pk, "WXXXXXX", clock)).wallets
