"""Customers: one per business and phone, written by every push (`upsert_customer`), on both
databases."""

import asyncio

from sqlalchemy import select

from pesagate.models import Customer
from pesagate.payments import repository
from pesagate.payments.views import CustomerView
from tests.ledger.books import Books

PHONE = "254712399001"
NO_DETAILS = {"email": None, "first_name": None, "last_name": None}


async def upsert(books: Books, business_pk: int, **details: str | None) -> tuple[int, CustomerView]:
    async with books.db.transaction() as session:
        return await repository.upsert_customer(
            session, business_pk, PHONE, {**NO_DETAILS, **details}
        )


async def stored(books: Books, business_pk: int) -> list[Customer]:
    async with books.db.read() as session:
        rows = await session.scalars(select(Customer).where(Customer.business_id == business_pk))
        return list(rows)


def view_of(row: Customer) -> CustomerView:
    return CustomerView(
        row.customer_id,
        row.phone_number,
        row.email,
        row.first_name,
        row.last_name,
        row.country,
        row.zipcode,
        row.provider,
        row.created_at,
        row.updated_at,
    )


async def test_a_first_payment_makes_the_customer_and_renders_it_as_stored(books):
    business_pk, _, _ = await books.merchant()
    pk, view = await upsert(books, business_pk, first_name="Wanjiku")
    [row] = await stored(books, business_pk)
    assert row.id == pk
    assert view == view_of(row)
    assert (view.phone_number, view.first_name, view.email) == (PHONE, "Wanjiku", None)


async def test_later_payments_reuse_the_customer_and_newer_details_win(books):
    business_pk, _, _ = await books.merchant()
    first_pk, first = await upsert(books, business_pk, first_name="Wanjiku", email="w@example.com")
    second_pk, second = await upsert(books, business_pk, first_name="Wanjikũ")
    third_pk, third = await upsert(books, business_pk)  # no details: nothing is erased

    assert first_pk == second_pk == third_pk
    assert first.customer_id == second.customer_id == third.customer_id
    assert (second.first_name, second.email) == ("Wanjikũ", "w@example.com")
    [row] = await stored(books, business_pk)
    assert view_of(row) == third
    assert (row.first_name, row.email) == ("Wanjikũ", "w@example.com")


async def test_concurrent_first_payments_of_one_phone_make_one_customer(books):
    business_pk, _, _ = await books.merchant()
    answers = await asyncio.gather(*(upsert(books, business_pk) for _ in range(8)))
    [row] = await stored(books, business_pk)
    assert {pk for pk, _ in answers} == {row.id}
    assert {view.customer_id for _, view in answers} == {row.customer_id}
