"""`lock_invoice(with_customer=False)`, the success callback's read: the invoice and its wallet
from one Core statement, made persistent instances as if the ORM had loaded them. They must
equal what the ORM loads, track and save changes as usual, and leave the customer unloaded."""

import pytest
from sqlalchemy import inspect

from pesagate.models import Invoice, InvoiceState, Wallet
from pesagate.payments import repository
from tests.fixtures.statements import Statements
from tests.ledger.books import Books


def columns(instance: object) -> dict[str, object]:
    mapper = inspect(type(instance))
    return {attr.key: getattr(instance, attr.key) for attr in mapper.column_attrs}


async def pushed_token(books: Books) -> tuple[int, str]:
    business_pk, _, _ = await books.merchant()
    new = await books.pushed(business_pk, 100)
    row = await books.invoice_row(new.id)
    return new.id, row.callback_token


async def test_the_instances_equal_what_the_orm_loads(books):
    invoice_pk, token = await pushed_token(books)
    async with books.db.transaction() as session:
        by_orm = await repository.lock_invoice(session, id=invoice_pk)
        assert by_orm is not None
        expected, expected_wallet = columns(by_orm), columns(by_orm.wallet)
    async with books.db.transaction() as session:
        invoice = await repository.lock_invoice(session, callback_token=token, with_customer=False)
        assert invoice is not None
        assert columns(invoice) == expected
        assert {k: type(v) for k, v in columns(invoice).items()} == {
            k: type(v) for k, v in expected.items()
        }
        assert columns(invoice.wallet) == expected_wallet
        assert isinstance(invoice.wallet, Wallet)
        assert inspect(invoice).persistent and inspect(invoice.wallet).persistent
        assert not session.dirty and not session.new  # nothing to flush


async def test_changes_are_saved_with_one_update_and_the_rest_flushes(books):
    invoice_pk, token = await pushed_token(books)
    with Statements(books.db) as statements:
        async with books.db.transaction() as session:
            invoice = await repository.lock_invoice(
                session, callback_token=token, with_customer=False
            )
            assert invoice is not None
            invoice.state = InvoiceState.FAILED
            invoice.failed_code = "1032"
            await repository.save_invoice(session, invoice)
            invoice.failed_reason = "changed after the save"  # the flush at commit writes it
    updates = [sql for sql in statements.seen if sql.startswith("update invoices")]
    assert len(updates) == 2
    row = await books.invoice_row(invoice_pk)
    assert (row.state, row.failed_code, row.failed_reason) == (
        InvoiceState.FAILED,
        "1032",
        "changed after the save",
    )


async def test_a_change_rolls_back_with_its_transaction(books):
    invoice_pk, token = await pushed_token(books)
    with pytest.raises(ZeroDivisionError):
        async with books.db.transaction() as session:
            invoice = await repository.lock_invoice(
                session, callback_token=token, with_customer=False
            )
            assert invoice is not None
            invoice.state = InvoiceState.FAILED
            await repository.save_invoice(session, invoice)
            _ = 1 / 0
    assert (await books.invoice_row(invoice_pk)).state == InvoiceState.PENDING


async def test_an_invoice_already_in_the_session_is_refreshed_not_duplicated(books):
    invoice_pk, token = await pushed_token(books)
    async with books.db.transaction() as session:
        first = await session.get(Invoice, invoice_pk)
        again = await repository.lock_invoice(session, callback_token=token, with_customer=False)
        assert again is first


async def test_an_unknown_token_is_none_and_the_customer_is_not_loaded(books):
    _, token = await pushed_token(books)
    async with books.db.transaction() as session:
        assert (
            await repository.lock_invoice(session, callback_token="nope", with_customer=False)
        ) is None
        invoice = await repository.lock_invoice(session, callback_token=token, with_customer=False)
        assert invoice is not None
        assert "customer" in inspect(invoice).unloaded
