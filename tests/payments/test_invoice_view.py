"""The status read (`repository.invoice_view`): what it returns equals what SQLAlchemy's own
execution of the same statement returns and what the ORM row holds, for invoices in every
state, on both databases. On SQLite the read runs through the driver (`Database.first_row`),
so this is what checks its conversions (datetimes, enums, NULLs)."""

from pesagate.db import Database
from pesagate.models import InvoiceState, LineStatus
from pesagate.payments import repository
from pesagate.payments.views import InvoiceView, invoice_json, session_json


async def through_sqlalchemy(db: Database, business_pk: int, invoice_id: str) -> InvoiceView:
    where = {"invoice_id": invoice_id, "business_pk": business_pk}
    async with db.read_one() as connection:
        row = (await connection.execute(repository._INVOICE_VIEW, where)).one()
    return repository.view_of_row(row)


async def test_every_state_reads_as_sqlalchemy_and_the_orm_read_it(books):
    business_pk, _, _ = await books.merchant(clearing_delay_s=3600)
    pending = await books.invoice(business_pk, 100)
    completed = await books.invoice(business_pk, 250)
    failed = await books.invoice(business_pk, 40, tariff="CUSTOMER-PAYS")
    assert await books.complete(completed, receipt="UKS7654321")
    assert await books.fail(failed, code="1032")

    states = []
    for invoice_pk in (pending, completed, failed):
        row = await books.invoice_row(invoice_pk)
        view = await repository.invoice_view(books.db, business_pk, row.invoice_id)
        assert view is not None
        assert view == await through_sqlalchemy(books.db, business_pk, row.invoice_id)
        assert invoice_json(view) == invoice_json(row)
        assert session_json(view) == session_json(row)
        assert (view.created_at, view.updated_at) == (row.created_at, row.updated_at)
        states.append((view.state, view.clearing_status, view.failed_code, view.mpesa_reference))

    assert states == [
        (InvoiceState.PENDING, None, None, None),
        (InvoiceState.COMPLETE, LineStatus.CLEARING, None, "UKS7654321"),
        (InvoiceState.FAILED, None, "1032", None),
    ]
    assert all(type(state) is InvoiceState for state, *_ in states)


async def test_an_unknown_or_another_business_invoice_is_none(books):
    business_pk, _, _ = await books.merchant()
    other_pk, _, _ = await books.merchant("Other shop")
    invoice_id = (await books.invoice_row(await books.invoice(business_pk, 100))).invoice_id

    assert await repository.invoice_view(books.db, other_pk, invoice_id) is None
    assert await repository.invoice_view(books.db, business_pk, "NOSUCHID00") is None
    assert await repository.invoice_view(books.db, business_pk, invoice_id) is not None
