"""Phase 3 of the push: what Daraja answered, stored on an invoice that may have moved on
since phase 1 (a callback or a query can come before the push's own answer)."""

import orjson
from sqlalchemy import select

from pesagate.models import InvoiceState, WebhookEvent
from pesagate.mpesa.results import PushAccepted
from pesagate.payments import repository
from pesagate.payments.service import record_push_result
from pesagate.payments.views import invoice_json
from pesagate.webhooks.schemas import EndpointCreate
from pesagate.webhooks.service import add_endpoint
from tests.fixtures.statements import Statements
from tests.ledger.books import Books

ACCEPTED = PushAccepted(merchant_request_id="29115-1", checkout_request_id="ws_CO_push", raw="{}")


async def subscribed_merchant(books: Books) -> int:
    business_pk, _, _ = await books.merchant()
    async with books.db.transaction() as session:
        hook = EndpointCreate(endpoint="http://127.0.0.1:9/hooks", challenge="phase-3")
        await add_endpoint(session, business_pk, hook, live=False)
    return business_pk


async def announced(books: Books, invoice_pk: int) -> list[dict[str, object]]:
    """The invoice's collection events, oldest first, without the endpoint's challenge."""
    async with books.db.read() as session:
        events = await session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.ordering_key == f"invoice:{invoice_pk}")
            .order_by(WebhookEvent.id)
        )
        payloads = [orjson.loads(event.payload) for event in events]
    return [{k: v for k, v in payload.items() if k != "challenge"} for payload in payloads]


async def test_an_untouched_invoice_takes_the_answer_as_the_locked_path_would(books):
    business_pk = await subscribed_merchant(books)
    new = await books.pushed(business_pk, 100)

    answer = await record_push_result(books.db, new, ACCEPTED)

    row = await books.invoice_row(new.id)
    assert row.state == InvoiceState.PROCESSING
    assert (row.checkout_request_id, row.merchant_request_id) == ("ws_CO_push", "29115-1")
    assert row.updated_at > new.view.updated_at
    # The answer, and the event the change announced, render exactly as the stored row.
    assert invoice_json(answer) == invoice_json(row)
    states = [event["state"] for event in await announced(books, new.id)]
    assert states == ["PENDING", "PROCESSING"]
    assert (await announced(books, new.id))[-1] == orjson.loads(orjson.dumps(invoice_json(row)))


async def test_an_untouched_invoice_is_changed_without_being_read(books):
    business_pk = await subscribed_merchant(books)
    new = await books.pushed(business_pk, 100)
    with Statements(books.db) as statements:
        await record_push_result(books.db, new, ACCEPTED)

    on_invoices = statements.on("invoices")
    assert len(on_invoices) == 1 and on_invoices[0].startswith("update invoices"), statements.seen


async def test_ids_a_callback_lent_first_give_way_to_the_push_answer(books):
    business_pk = await subscribed_merchant(books)
    new = await books.pushed(business_pk, 100)
    # A success callback that beat the push's answer lends its ids and waits for
    # confirmation; the invoice stays PENDING but is no longer as phase 1 wrote it.
    async with books.db.transaction() as session:
        invoice = await repository.lock_invoice(session, id=new.id)
        assert invoice is not None
        invoice.checkout_request_id = "ws_CO_lent_by_callback"

    answer = await record_push_result(books.db, new, ACCEPTED)

    row = await books.invoice_row(new.id)
    # The locked path decided: the push's own answer is the authority on the ids.
    assert row.state == InvoiceState.PROCESSING
    assert row.checkout_request_id == "ws_CO_push"
    assert invoice_json(answer) == invoice_json(row)


async def test_an_invoice_decided_before_the_answer_stays_decided(books):
    business_pk = await subscribed_merchant(books)
    new = await books.pushed(business_pk, 100)
    assert await books.complete(new.id, receipt="UKS7654321")

    answer = await record_push_result(books.db, new, ACCEPTED)

    row = await books.invoice_row(new.id)
    assert row.state == InvoiceState.COMPLETE
    assert row.mpesa_reference == "UKS7654321"
    assert row.checkout_request_id == "ws_CO_push"
    assert answer.state == InvoiceState.COMPLETE
    states = [event["state"] for event in await announced(books, new.id)]
    assert states == ["PENDING", "COMPLETE"]  # no PROCESSING after COMPLETE
    assert await books.collection_entries(new.id) == 1
