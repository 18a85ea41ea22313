"""The callback path's invoice: `lock_invoice_by_token` reads it with one Core statement as a
plain `LockedInvoice` (no ORM instance), and `save_invoice` writes what changed with one Core
UPDATE. On both databases."""

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import orjson
import pytest
from sqlalchemy import inspect

from pesagate.db import Database
from pesagate.models import CallbackOutcome, Invoice, InvoiceState, LineStatus
from pesagate.mpesa.results import PushAccepted
from pesagate.payments import repository
from pesagate.payments.callbacks import receive_callback
from pesagate.payments.locked import COLUMNS, LockedInvoice
from pesagate.payments.service import record_push_result
from pesagate.payments.views import invoice_json
from tests.fixtures.statements import Statements
from tests.ledger.books import Books


def columns(invoice: Invoice | LockedInvoice) -> dict[str, object]:
    return {key: getattr(invoice, key) for key in COLUMNS}


async def pushed_token(books: Books) -> tuple[int, str]:
    business_pk, _, _ = await books.merchant()
    new = await books.pushed(business_pk, 100)
    row = await books.invoice_row(new.id)
    return new.id, row.callback_token


def updates(statements: Statements) -> list[str]:
    return [sql for sql in statements.seen if sql.startswith("update invoices")]


def test_it_holds_every_column_of_the_model() -> None:
    assert set(COLUMNS) == {column.key for column in inspect(Invoice).column_attrs}


def test_every_column_holds_immutable_values() -> None:
    """`changes()` compares values: a mutable one (JSON, say) changed in place would be missed."""
    immutable = (int, str, bool, datetime, Decimal, StrEnum)
    for column in Invoice.__table__.columns:
        kind = getattr(column.type, "impl_instance", column.type)  # a TypeDecorator's own
        assert issubclass(kind.python_type, immutable), column.key


async def test_it_equals_what_the_orm_loads_and_the_session_holds_nothing(books):
    invoice_pk, token = await pushed_token(books)
    by_orm = await books.invoice_row(invoice_pk)
    async with books.db.transaction() as session:
        invoice = await repository.lock_invoice_by_token(session, token)
        assert invoice is not None
        assert columns(invoice) == columns(by_orm)
        assert {k: type(v) for k, v in columns(invoice).items()} == {
            k: type(v) for k, v in columns(by_orm).items()
        }
        assert invoice.wallet.wallet_id == by_orm.wallet.wallet_id
        assert invoice_json(invoice) == invoice_json(by_orm)
        assert not session.sync_session.identity_map
        assert invoice.changes() == {}


async def test_an_unknown_token_is_none(books):
    await pushed_token(books)
    async with books.db.transaction() as session:
        assert await repository.lock_invoice_by_token(session, "nope") is None


async def test_what_changed_is_written_by_one_update_and_updated_at_moves(books):
    invoice_pk, token = await pushed_token(books)
    before = await books.invoice_row(invoice_pk)
    with Statements(books.db) as statements:
        async with books.db.transaction() as session:
            invoice = await repository.lock_invoice_by_token(session, token)
            assert invoice is not None
            invoice.state = InvoiceState.COMPLETE
            invoice.mpesa_reference = "RCP123"
            invoice.clearing_status = LineStatus.AVAILABLE
            invoice.failed_code = None  # set to what it was: not a change
            assert invoice.changes().keys() == {"state", "mpesa_reference", "clearing_status"}
            await repository.save_invoice(session, invoice)
            assert invoice.changes() == {}
            await repository.save_invoice(session, invoice)  # nothing left: no statement
            saved = invoice_json(invoice)
    [update] = updates(statements)
    for column in ("state", "mpesa_reference", "clearing_status", "updated_at"):
        assert column in update
    assert "failed_code" not in update and "account" not in update
    row = await books.invoice_row(invoice_pk)
    assert (row.state, row.mpesa_reference, row.clearing_status) == (
        InvoiceState.COMPLETE,
        "RCP123",
        LineStatus.AVAILABLE,
    )
    assert row.updated_at > before.updated_at
    assert invoice_json(row) == saved  # the instance and the row agree, updated_at included


async def test_an_updated_at_set_by_the_caller_is_kept(books):
    invoice_pk, token = await pushed_token(books)
    chosen = (await books.invoice_row(invoice_pk)).updated_at + timedelta(minutes=5)
    async with books.db.transaction() as session:
        invoice = await repository.lock_invoice_by_token(session, token)
        assert invoice is not None
        invoice.retry_count = 3
        invoice.updated_at = chosen
        await repository.save_invoice(session, invoice)
    row = await books.invoice_row(invoice_pk)
    assert (row.retry_count, row.updated_at) == (3, chosen)


async def test_an_unchanged_invoice_writes_nothing(books):
    _, token = await pushed_token(books)
    with Statements(books.db) as statements:
        async with books.db.transaction() as session:
            invoice = await repository.lock_invoice_by_token(session, token)
            assert invoice is not None
            await repository.save_invoice(session, invoice)
    assert updates(statements) == []


async def test_a_change_rolls_back_with_its_transaction(books):
    invoice_pk, token = await pushed_token(books)
    with pytest.raises(ZeroDivisionError):
        async with books.db.transaction() as session:
            invoice = await repository.lock_invoice_by_token(session, token)
            assert invoice is not None
            invoice.state = InvoiceState.FAILED
            await repository.save_invoice(session, invoice)
            _ = 1 / 0
    assert (await books.invoice_row(invoice_pk)).state == InvoiceState.PENDING


async def test_concurrent_copies_of_a_success_apply_once_under_the_lock(books, db_url):
    """Each copy locks the row before it asks whether its body was seen: one is applied and
    credited, the others are duplicates, whichever connection they arrive on."""
    business_pk, settlement, _ = await books.merchant()
    new = await books.pushed(business_pk, 100)
    await record_push_result(books.db, new, PushAccepted("mr-1", "ws_CO_1", "{}"))
    token = (await books.invoice_row(new.id)).callback_token
    body = orjson.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "mr-1",
                    "CheckoutRequestID": "ws_CO_1",
                    "ResultCode": 0,
                    "ResultDesc": "The service request is processed successfully.",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": 100},
                            {"Name": "MpesaReceiptNumber", "Value": "RCP0000001"},
                            {"Name": "PhoneNumber", "Value": 254712345678},
                        ]
                    },
                }
            }
        }
    )
    databases = [Database(db_url) for _ in range(4)]
    try:
        received = await asyncio.gather(
            *(receive_callback(databases[n % 4], token, body, "127.0.0.1") for n in range(12))
        )
    finally:
        for database in databases:
            await database.dispose()
    outcomes = sorted(r.outcome for r in received)
    assert outcomes == sorted([CallbackOutcome.APPLIED] + [CallbackOutcome.DUPLICATE] * 11)
    row = await books.invoice_row(new.id)
    assert (row.state, row.mpesa_reference) == (InvoiceState.COMPLETE, "RCP0000001")
    assert await books.collection_entries(new.id) == 1
    assert (await books.balances(settlement))[0] == 10_000 - 220
    assert await books.findings() == []
