"""Platform accounts are looked up once per database and remembered only once committed."""

import pytest

from pesagate.ledger.postings import platform_account, platform_account_code
from pesagate.models import AccountKind, LedgerAccount


async def test_a_platform_account_is_remembered_only_after_its_commit(books):
    db = books.db
    code = platform_account_code(AccountKind.FEE_INCOME, "KES")
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await platform_account(session, AccountKind.FEE_INCOME, "KES")
            raise RuntimeError("rolled back")
    assert code not in db.memo  # it was created in a transaction that did not commit

    async with db.transaction() as session:
        created = await platform_account(session, AccountKind.FEE_INCOME, "KES")
        assert code not in db.memo  # not before the commit
    assert db.memo[code].id == created.id

    async with db.transaction() as session:
        again = await platform_account(session, AccountKind.FEE_INCOME, "KES")
    assert again.id == created.id and again.kind == AccountKind.FEE_INCOME
    async with db.read() as session:
        rows = (
            await session.scalars(
                LedgerAccount.__table__.select().where(LedgerAccount.code == code)
            )
        ).all()
    assert len(rows) == 1


async def test_collections_credit_the_remembered_accounts(books):
    business, _, _ = await books.merchant()
    for amount in (100, 250):
        assert await books.complete(await books.invoice(business, amount))
    assert await books.findings() == []  # entries balance, postings reference real accounts
