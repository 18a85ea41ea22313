"""`pesagate ledger verify` finds what is wrong, and the database refuses what must not be."""

import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pesagate.db import is_sqlite
from tests.fixtures.cli import run_cli


async def test_clean_books_verify_clean_and_the_cli_agrees(books, db_url):
    business, _, _ = await books.merchant()
    assert await books.complete(await books.invoice(business, 300))
    assert await books.findings() == []
    result = cli(db_url, "ledger", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The books balance" in result.stdout


async def test_a_tampered_balance_is_found(books, db_url):
    business, settlement, _ = await books.merchant()
    assert await books.complete(await books.invoice(business, 300))
    async with books.db.transaction() as session:
        await session.execute(
            text(
                "UPDATE ledger_accounts SET balance_minor = balance_minor + 1 WHERE wallet_id = :w"
            ),
            {"w": settlement.id},
        )
    findings = await books.findings()
    assert any("postings sum to" in finding for finding in findings)
    result = cli(db_url, "ledger", "verify")
    assert result.returncode == 1
    assert "finding" in result.stdout


async def test_a_complete_invoice_without_credit_is_found(books):
    business, _, _ = await books.merchant()
    invoice_pk = await books.invoice(business, 300)
    async with books.db.transaction() as session:
        await session.execute(
            text("UPDATE invoices SET state = 'COMPLETE' WHERE id = :i"), {"i": invoice_pk}
        )
    assert any("never credited" in finding for finding in await books.findings())


async def test_postings_cannot_be_edited_or_deleted(books):
    business, _, _ = await books.merchant()
    assert await books.complete(await books.invoice(business, 300))
    for statement in (
        "UPDATE ledger_postings SET amount_minor = amount_minor + 100",
        "DELETE FROM ledger_postings",
        "DELETE FROM ledger_entries",
    ):
        with pytest.raises(DBAPIError):
            async with books.db.transaction() as session:
                await session.execute(text(statement))
    assert await books.findings() == []


async def test_an_unbalanced_entry_is_refused_by_postgres_and_found_on_sqlite(books, db_url):
    _, settlement, _ = await books.merchant()
    account_id = await account_of(books, settlement.id)

    async def write_unbalanced():
        async with books.db.transaction() as session:
            entry_id = (
                await session.execute(
                    text(
                        "INSERT INTO ledger_entries (key, kind, narrative, created_at)"
                        " VALUES ('bad', 'ADJUSTMENT', 'bad', CURRENT_TIMESTAMP) RETURNING id"
                    )
                )
            ).scalar_one()
            await session.execute(
                text(
                    "INSERT INTO ledger_postings (transaction_id, entry_id, account_id,"
                    " amount_minor, trans_type, status, running_balance_minor, narrative,"
                    " created_at, updated_at)"
                    " VALUES ('BADLINE00001', :e, :a, 500, 'ADJUSTMENT', 'AVAILABLE', 500, 'bad',"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"e": entry_id, "a": account_id},
            )

    if is_sqlite(db_url):
        await write_unbalanced()
        findings = await books.findings()
        assert any("does not balance" in finding for finding in findings)
    else:
        with pytest.raises(DBAPIError, match="does not balance"):
            await write_unbalanced()
        assert await books.findings() == []


async def account_of(books, wallet_pk):
    async with books.db.read() as session:
        return (
            await session.execute(
                text("SELECT id FROM ledger_accounts WHERE wallet_id = :w"), {"w": wallet_pk}
            )
        ).scalar_one()


def cli(db_url, *args):
    return run_cli(args, {**os.environ, "PESAGATE_DATABASE_URL": db_url})
