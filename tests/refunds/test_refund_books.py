"""Refunds in the books, driven through the refunds domain's use cases (no HTTP): the hold, the
REFUND entry exactly once, fees returned, concurrent refunds, and `ledger verify`."""

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from sqlalchemy import func, select, text

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.errors import ValidationFailed
from pesagate.models import EntryKind, LedgerEntry, ResultKind, ResultOutcome
from pesagate.refunds import service
from pesagate.refunds.results import ResultPolicy, receive_result
from pesagate.refunds.schemas import parse_request
from tests.ledger.books import Books

POLICY = ResultPolicy(unknown_grace_s=0.0)


@pytest.fixture
async def books(db_url: str) -> AsyncIterator[Books]:
    db = Database(db_url)
    yield Books(db, Settings(database_url=db_url))
    await db.dispose()


async def paid(books: Books, amount: int, tariff: str = "BUSINESS-PAYS") -> tuple[int, str, int]:
    business, _, _ = await books.merchant()
    invoice_pk = await books.invoice(business, amount, tariff)
    assert await books.complete(invoice_pk, receipt=f"UKS{invoice_pk:07d}")
    invoice = await books.invoice_row(invoice_pk)
    return business, invoice.invoice_id, invoice.value_minor


async def create(books: Books, business: int, invoice_id: str, value_minor: int) -> dict:
    request = parse_request(
        {"invoice_id": invoice_id, "amount": f"{value_minor / 100:.2f}", "reason": "Other"}
    )
    return dict(await service.create_refund(books.db, business, request))


def result_body(code: object, receipt: str = "UKT1234567") -> bytes:
    return orjson.dumps(
        {
            "Result": {
                "ResultType": 0,
                "ResultCode": code,
                "ResultDesc": "desc",
                "ConversationID": "AG_1",
                "TransactionID": receipt,
            }
        }
    )


async def token_of(books: Books, chargeback_id: str) -> str:
    async with books.db.read() as session:
        return str(
            await session.scalar(
                text("SELECT token FROM refunds WHERE chargeback_id = :c"), {"c": chargeback_id}
            )
        )


async def refund_entries(books: Books) -> int:
    async with books.db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind == EntryKind.REFUND)
        )
    return int(count or 0)


@pytest.mark.parametrize("tariff", ["BUSINESS-PAYS", "CUSTOMER-PAYS"])
async def test_a_completed_refund_undoes_the_collection_once(books, tariff):
    business, invoice_id, value = await paid(books, 1000, tariff)
    created = await create(books, business, invoice_id, value)
    assert created["status"] == "PENDING"
    token = await token_of(books, created["chargeback_id"])
    body = result_body(0)
    outcomes = await asyncio.gather(
        *(receive_result(books.db, token, ResultKind.RESULT, body, "1.2.3.4", POLICY) for _ in "ab")
    )
    # Concurrent copies: one applies; the other is a duplicate, or finds the refund final.
    assert ResultOutcome.APPLIED in outcomes
    assert set(outcomes) <= {ResultOutcome.APPLIED, ResultOutcome.IGNORED, ResultOutcome.DUPLICATE}
    assert outcomes.count(ResultOutcome.APPLIED) == 1
    again = await receive_result(books.db, token, ResultKind.RESULT, body, None, POLICY)
    assert again == ResultOutcome.DUPLICATE
    assert await refund_entries(books) == 1
    detail = await service.refund_detail(books.db, business, created["chargeback_id"])
    assert detail["status"] == "COMPLETED" and detail["mpesa_reference"] == "UKT1234567"
    async with books.db.read() as session:
        wallets = await session.scalar(
            text("SELECT sum(balance_minor) FROM ledger_accounts WHERE kind = 'WALLET'")
        )
        fees = await session.scalar(
            text(
                "SELECT coalesce(sum(p.amount_minor), 0) FROM ledger_postings p"
                " JOIN ledger_accounts a ON a.id = p.account_id WHERE a.kind = 'FEE_INCOME'"
            )
        )
    assert (wallets, fees) == (0, 0)  # the collection undone: the fee goes back too
    assert await books.findings() == []


async def test_a_failed_reversal_releases_the_hold_and_allows_another_refund(books):
    business, invoice_id, value = await paid(books, 500)
    first = await create(books, business, invoice_id, value)
    with pytest.raises(ValidationFailed):
        await create(books, business, invoice_id, value)
    token = await token_of(books, first["chargeback_id"])
    assert (
        await receive_result(books.db, token, ResultKind.RESULT, result_body("1"), None, POLICY)
        == ResultOutcome.APPLIED
    )
    second = await create(books, business, invoice_id, value)
    assert second["status"] == "PENDING"
    assert await books.findings() == []


async def test_concurrent_full_refunds_one_wins(books):
    business, invoice_id, value = await paid(books, 700)
    results = await asyncio.gather(
        *(create(books, business, invoice_id, value) for _ in range(5)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, ValidationFailed)]
    assert (len(created), len(refused)) == (1, 4)
    assert await books.findings() == []


async def test_verify_finds_a_tampered_hold_and_refund(books):
    business, invoice_id, value = await paid(books, 300)
    created = await create(books, business, invoice_id, value)
    assert await books.findings() == []
    async with books.db.transaction() as session:
        await session.execute(text("UPDATE ledger_accounts SET held_minor = held_minor + 1"))
    assert any("HELD holds sum to" in f for f in await books.findings())
    async with books.db.transaction() as session:
        await session.execute(text("UPDATE ledger_accounts SET held_minor = held_minor - 1"))
        await session.execute(
            text("UPDATE refunds SET status = 'CANCELLED' WHERE chargeback_id = :c"),
            {"c": created["chargeback_id"]},
        )
    found = await books.findings()
    assert any("is CANCELLED but its hold is HELD" in f for f in found)
    assert any("refunded, its refunds" in f for f in found)


async def test_a_status_result_settles_a_refund_without_a_reversal_result(books):
    business, invoice_id, value = await paid(books, 400)
    created = await create(books, business, invoice_id, value)
    token = await token_of(books, created["chargeback_id"])
    receipt = (await books.invoice_row(await _pk(books, invoice_id))).mpesa_reference

    def status(state: str) -> bytes:
        return orjson.dumps(
            {
                "Result": {
                    "ResultCode": 0,
                    "ResultDesc": "ok",
                    "ResultParameters": {
                        "ResultParameter": [
                            {"Key": "ReceiptNo", "Value": receipt},
                            {"Key": "TransactionStatus", "Value": state},
                        ]
                    },
                }
            }
        )

    # Not sent yet: "Completed" says nothing (the grace counts from the sending).
    assert (
        await receive_result(books.db, token, ResultKind.STATUS, status("Completed"), None, POLICY)
        == ResultOutcome.IGNORED
    )
    assert (
        await receive_result(books.db, token, ResultKind.STATUS, status("Reversed"), None, POLICY)
        == ResultOutcome.APPLIED
    )
    assert (await service.refund_detail(books.db, business, created["chargeback_id"]))[
        "status"
    ] == "COMPLETED"
    assert await books.findings() == []


async def _pk(books: Books, invoice_id: str) -> int:
    async with books.db.read() as session:
        return int(
            await session.scalar(
                text("SELECT id FROM invoices WHERE invoice_id = :i"), {"i": invoice_id}
            )
        )


async def test_a_reversal_carried_out_after_the_grace_still_reaches_the_books(books):
    business, invoice_id, value = await paid(books, 600)
    created = await create(books, business, invoice_id, value)
    token = await token_of(books, created["chargeback_id"])
    refund_pk = await _refund_pk(books, created["chargeback_id"])
    assert await service.claim_sending(books.db, refund_pk) is not None  # the reversal went
    receipt = (await books.invoice_row(await _pk(books, invoice_id))).mpesa_reference
    not_reversed = orjson.dumps(
        {
            "Result": {
                "ResultCode": 0,
                "ResultDesc": "ok",
                "ResultParameters": {
                    "ResultParameter": [
                        {"Key": "ReceiptNo", "Value": receipt},
                        {"Key": "TransactionStatus", "Value": "Completed"},
                    ]
                },
            }
        }
    )
    # The grace (0 s here) has passed and M-Pesa still shows the payment: taken as never done.
    assert (
        await receive_result(books.db, token, ResultKind.STATUS, not_reversed, None, POLICY)
        == ResultOutcome.APPLIED
    )
    detail = await service.refund_detail(books.db, business, created["chargeback_id"])
    assert detail["status"] == "CANCELLED"
    assert await books.findings() == []
    # Then M-Pesa's Result 0 arrives after all: the money left, so the books follow.
    late = await receive_result(books.db, token, ResultKind.RESULT, result_body(0), None, POLICY)
    assert late == ResultOutcome.APPLIED
    detail = await service.refund_detail(books.db, business, created["chargeback_id"])
    assert detail["status"] == "COMPLETED"
    assert "after it was taken as never done" in detail["resolution"]
    assert await refund_entries(books) == 1
    assert await books.findings() == []


async def _refund_pk(books: Books, chargeback_id: str) -> int:
    async with books.db.read() as session:
        return int(
            await session.scalar(
                text("SELECT id FROM refunds WHERE chargeback_id = :c"), {"c": chargeback_id}
            )
        )


async def test_a_receipt_mpesa_does_not_know_cancels_the_refund_after_the_grace(books):
    # The soak's case: the reversal's Result was lost, and Transaction Status answers R000002
    # (no payment by that receipt) on every query. Nothing can have been reversed.
    business, invoice_id, value = await paid(books, 300)
    created = await create(books, business, invoice_id, value)
    token = await token_of(books, created["chargeback_id"])
    kind = ResultKind.STATUS
    not_known = result_body("R000002", receipt="UKT0000001")
    # Before the reversal is sent, it proves nothing (the grace counts from the sending).
    assert await receive_result(books.db, token, kind, not_known, None, POLICY) == (
        ResultOutcome.IGNORED
    )
    async with books.db.read() as session:
        refund_pk = int(
            await session.scalar(
                text("SELECT id FROM refunds WHERE chargeback_id = :c"),
                {"c": created["chargeback_id"]},
            )
        )
    assert await service.claim_sending(books.db, refund_pk) is not None
    again = result_body("R000002", receipt="UKT0000002")
    assert await receive_result(books.db, token, kind, again, None, POLICY) == (
        ResultOutcome.APPLIED
    )
    detail = await service.refund_detail(books.db, business, created["chargeback_id"])
    assert detail["status"] == "CANCELLED"
    assert await refund_entries(books) == 0
    assert await books.findings() == []
