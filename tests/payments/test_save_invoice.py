"""`save_invoice`: a locked invoice's changes written by one Core UPDATE, leaving the unit of
work nothing to flush, on both databases."""

from datetime import timedelta

from pesagate.models import InvoiceState
from pesagate.payments import repository
from pesagate.payments.service import NewInvoice
from pesagate.payments.views import invoice_json
from tests.fixtures.statements import Statements
from tests.ledger.books import Books


async def pushed(books: Books) -> NewInvoice:
    business_pk, _, _ = await books.merchant()
    return await books.pushed(business_pk, 100)


async def test_changes_are_written_at_once_and_nothing_is_left_to_flush(books):
    new = await pushed(books)
    with Statements(books.db) as statements:
        async with books.db.transaction() as session:
            invoice = await repository.lock_invoice(session, id=new.id)
            invoice.state = InvoiceState.FAILED
            invoice.failed_code = "1032"
            invoice.failed_reason = "Request cancelled by user"
            await repository.save_invoice(session, invoice)
            assert len(updates(statements)) == 1
            assert not session.dirty
            saved = invoice_json(invoice)
    # The commit's flush wrote nothing more.
    assert len(updates(statements)) == 1
    row = await books.invoice_row(new.id)
    assert (row.state, row.failed_code, row.failed_reason) == (
        InvoiceState.FAILED,
        "1032",
        "Request cancelled by user",
    )
    # updated_at moved as the flush's onupdate would have moved it, and the instance agrees.
    assert row.updated_at > new.view.updated_at
    assert invoice_json(row) == saved


async def test_an_updated_at_set_by_the_caller_is_kept(books):
    new = await pushed(books)
    chosen = new.view.updated_at + timedelta(minutes=5)
    async with books.db.transaction() as session:
        invoice = await repository.lock_invoice(session, id=new.id)
        invoice.retry_count = 3
        invoice.updated_at = chosen
        await repository.save_invoice(session, invoice)
    row = await books.invoice_row(new.id)
    assert (row.retry_count, row.updated_at) == (3, chosen)


async def test_an_unchanged_invoice_writes_nothing_and_later_changes_still_flush(books):
    new = await pushed(books)
    with Statements(books.db) as statements:
        async with books.db.transaction() as session:
            invoice = await repository.lock_invoice(session, id=new.id)
            await repository.save_invoice(session, invoice)
            assert updates(statements) == []
            invoice.failed_reason = "changed after the save"  # the flush at commit writes it
    assert len(updates(statements)) == 1
    assert (await books.invoice_row(new.id)).failed_reason == "changed after the save"


def updates(statements: Statements) -> list[str]:
    return [sql for sql in statements.seen if sql.startswith("update invoices")]
