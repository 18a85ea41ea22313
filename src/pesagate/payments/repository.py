"""Every SQL statement on payments' tables (invoices, customers, mpesa_callbacks,
mpesa_queries).

Functions take the session of the unit of work they are part of: a read session
(`db.read()`) for queries, a write session (`db.transaction()`) for anything that locks or
changes rows. They never commit. Single reads of their own take a bare connection
(`db.read_one()`) or, for the status read, the database (`Database.first_row`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    ColumnElement,
    Select,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm.util import identity_key

from pesagate.db import (
    AnySession,
    AsyncReadSession,
    AsyncSession,
    Database,
    connection_of,
    insert_ignoring,
    select_rows,
    write,
)
from pesagate.kit import ids
from pesagate.kit.clock import utc_now
from pesagate.models import (
    CallbackOutcome,
    Customer,
    Invoice,
    InvoiceState,
    LineStatus,
    MpesaCallback,
    MpesaQuery,
    QueryKind,
    Wallet,
)
from pesagate.mpesa.protocol import ResultCode
from pesagate.payments.locked import COLUMNS as LOCKED_COLUMNS
from pesagate.payments.locked import LockedInvoice
from pesagate.payments.views import CustomerView, InvoiceView, WalletRef

# ---------------------------------------------------------------- invoices


# Built once per set of columns named.
_LOCKS: dict[tuple[str, ...], Select[Invoice]] = {}


async def lock_invoice(session: AsyncSession, **where: object) -> Invoice | None:
    """The invoice row, locked until the transaction ends (`FOR UPDATE`; on SQLite the write
    lock of `Database.transaction` serialises instead)."""
    key = tuple(sorted(where))
    statement = _LOCKS.get(key)
    if statement is None:
        conditions = [getattr(Invoice, column) == bindparam(column) for column in key]
        statement = _LOCKS[key] = (
            select(Invoice)
            .where(*conditions)
            .with_for_update(of=Invoice)
            .execution_options(populate_existing=True)
        )
    return await session.scalar(statement, where)


_INVOICES, _WALLETS = Invoice.__table__, Wallet.__table__
_LOCK_BY_TOKEN = (
    select(*(_INVOICES.c[column] for column in LOCKED_COLUMNS), _WALLETS.c.wallet_id)
    .join_from(_INVOICES, _WALLETS, _INVOICES.c.wallet_id == _WALLETS.c.id)
    .where(_INVOICES.c.callback_token == bindparam("token"))
    .with_for_update(of=_INVOICES)
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)  # both have `id`, `wallet_id`
)


async def lock_invoice_by_token(session: AsyncSession, token: str) -> LockedInvoice | None:
    """The invoice a callback's path token names, locked as by `lock_invoice`, as a plain
    `LockedInvoice` read with one Core statement (with its wallet's public id): no ORM
    instance, so nothing for the unit of work to load, track or flush. Save what the callback
    changed with `save_invoice`."""
    rows = await select_rows(await connection_of(session), _LOCK_BY_TOKEN, {"token": token})
    if not rows:
        return None
    *columns, wallet_id = rows[0]
    return LockedInvoice(
        **dict(zip(LOCKED_COLUMNS, columns, strict=True)), wallet=WalletRef(wallet_id)
    )


# Executed with the changed columns as parameters: Core sets those, one compiled form per set
# of columns.
_INVOICE_CHANGES = update(Invoice).where(Invoice.id == bindparam("invoice_pk"))


async def save_invoice(session: AsyncSession, invoice: LockedInvoice) -> None:
    """Write what changed in a locked invoice with one Core UPDATE (nothing if nothing did).
    `updated_at` moves, as the model's onupdate would move it, unless the caller set it."""
    # An ORM instance of the same row in this session would not see this UPDATE, and could
    # flush older values over it: the callback path loads none.
    assert identity_key(Invoice, invoice.id) not in session.sync_session.identity_map
    changed = invoice.changes()
    if not changed:
        return
    if "updated_at" not in changed:
        invoice.updated_at = changed["updated_at"] = utc_now()
    connection = await connection_of(session)
    await write(connection, _INVOICE_CHANGES, {"invoice_pk": invoice.id, **changed})
    invoice.saved()


async def invoice_by_pk(session: AnySession, invoice_pk: int) -> Invoice | None:
    """An invoice with its customer and wallet (joined loads)."""
    return await session.get(Invoice, invoice_pk)


async def receipt_taken(session: AsyncSession, receipt: str, invoice_pk: int) -> bool:
    """Whether another invoice already holds this M-Pesa receipt."""
    query = select(exists().where(Invoice.mpesa_reference == receipt, Invoice.id != invoice_pk))
    return bool(await session.scalar(query))


def status_query_detail(receipt: str, conversation_id: str) -> str:
    """How a Transaction Status query is kept: its Result must name both."""
    return f"receipt {receipt}, ConversationID {conversation_id}"


async def asked_status(
    session: AsyncSession, invoice_pk: int, receipt: str, conversation_id: str
) -> bool:
    """Whether pesagate asked Transaction Status about this receipt for this invoice and M-Pesa
    acknowledged the question with this ConversationID."""
    query = select(
        exists().where(
            MpesaQuery.invoice_id == invoice_pk,
            MpesaQuery.kind == QueryKind.TRANSACTION_STATUS,
            MpesaQuery.detail == status_query_detail(receipt, conversation_id),
        )
    )
    return bool(await session.scalar(query))


@dataclass(frozen=True, slots=True)
class InvoiceFilter:
    """The `GET /invoices/` filters, already validated."""

    state: InvoiceState | None = None
    api_ref: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    # The dashboard's filters (not the API's): the paying phone (MSISDN) and an amount range.
    phone: str | None = None
    value_min_minor: int | None = None
    value_max_minor: int | None = None
    open_only: bool = False  # PENDING or PROCESSING: not final yet

    def conditions(self, business_pk: int) -> list[ColumnElement[bool]]:
        conditions = [Invoice.business_id == business_pk]
        if self.state is not None:
            conditions.append(Invoice.state == self.state)
        if self.open_only:
            conditions.append(Invoice.state.in_((InvoiceState.PENDING, InvoiceState.PROCESSING)))
        if self.api_ref:
            conditions.append(Invoice.api_ref == self.api_ref)
        if self.phone:
            conditions.append(Invoice.account == self.phone)
        if self.value_min_minor is not None:
            conditions.append(Invoice.value_minor >= self.value_min_minor)
        if self.value_max_minor is not None:
            conditions.append(Invoice.value_minor <= self.value_max_minor)
        if self.created_after is not None:
            conditions.append(Invoice.created_at >= self.created_after)
        if self.created_before is not None:
            conditions.append(Invoice.created_at <= self.created_before)
        return conditions


async def invoices_page(
    session: AsyncReadSession,
    business_pk: int,
    where: InvoiceFilter,
    offset: int,
    limit: int,
    count_cap: int | None = None,
) -> tuple[int, list[Invoice]]:
    """How many invoices match (counted up to `count_cap` + 1 when given: counting every match
    reads every matching row), and one page of them, newest first."""
    conditions = where.conditions(business_pk)
    if count_cap is None:
        counted = select(func.count()).select_from(Invoice).where(*conditions)
    else:
        matches = select(Invoice.id).where(*conditions).limit(count_cap + 1).subquery()
        counted = select(func.count()).select_from(matches)
    count = await session.scalar(counted)
    page = await session.scalars(
        select(Invoice)
        .where(*conditions)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return count or 0, list(page.all())


# The status endpoint's one query, built once: plain columns in the view types' field order,
# so no ORM loading per row (the joined-load row processing was ~40% of a status request's
# CPU in bench/profile.py; building mapped instances cost as much as the query).
_INVOICES, _CUSTOMERS, _WALLETS = Invoice.__table__, Customer.__table__, Wallet.__table__
_INVOICE_COLUMNS = [f.name for f in fields(InvoiceView) if f.name not in ("customer", "wallet")]
_CUSTOMER_COLUMNS = [f.name for f in fields(CustomerView)]
_CUSTOMER_AT = len(_INVOICE_COLUMNS)
_WALLET_AT = _CUSTOMER_AT + len(_CUSTOMER_COLUMNS)
_INVOICE_VIEW = (
    select(
        *(_INVOICES.c[name] for name in _INVOICE_COLUMNS),
        *(_CUSTOMERS.c[name] for name in _CUSTOMER_COLUMNS),
        _WALLETS.c.wallet_id,
    )
    .join(_CUSTOMERS, _CUSTOMERS.c.id == _INVOICES.c.customer_id)
    .join(_WALLETS, _WALLETS.c.id == _INVOICES.c.wallet_id)
    .where(
        _INVOICES.c.invoice_id == bindparam("invoice_id"),
        _INVOICES.c.business_id == bindparam("business_pk"),
    )
)


async def invoice_view(db: Database, business_pk: int, invoice_id: str) -> InvoiceView | None:
    """A business's invoice, with its customer and wallet id, as a read-only view: one
    statement of its own (`Database.first_row`; the status path's one read)."""
    where = {"invoice_id": invoice_id, "business_pk": business_pk}
    row = await db.first_row(_INVOICE_VIEW, where)
    return None if row is None else view_of_row(row)


def view_of_row(row: Sequence[Any]) -> InvoiceView:
    """The view of a row of the status statement: sliced by position, as selected."""
    customer = CustomerView(*row[_CUSTOMER_AT:_WALLET_AT])
    return InvoiceView(customer, WalletRef(row[_WALLET_AT]), *row[:_CUSTOMER_AT])


# ---------------------------------------------------------------- customers


_CUSTOMER_BY_PHONE = select(
    _CUSTOMERS.c.id, *(_CUSTOMERS.c[name] for name in _CUSTOMER_COLUMNS)
).where(
    _CUSTOMERS.c.business_id == bindparam("business_pk"),
    _CUSTOMERS.c.phone_number == bindparam("phone_number"),
)
_CUSTOMER_RETURNED = ("id", *_CUSTOMER_COLUMNS)  # as _CUSTOMER_BY_PHONE selects them
_NEW_INVOICE = insert(Invoice).returning(Invoice.id)


async def upsert_customer(
    session: AsyncSession, business_pk: int, phone_number: str, details: dict[str, str | None]
) -> tuple[int, CustomerView]:
    """One customer per business and phone (concurrent first payments make one row); newer
    details fill in or replace older ones. Its id and what is rendered of it, read and
    written with Core statements (every push runs this)."""
    connection = await connection_of(session)
    now = utc_now()
    row = {
        "customer_id": ids.customer_id(),
        "business_id": business_pk,
        "phone_number": phone_number,
        "created_at": now,
        "updated_at": now,
    }
    new = insert_ignoring(session, Customer, returning=_CUSTOMER_RETURNED)
    inserted = (await write(connection, new, row)).returned
    stored: Sequence[Any] | None = inserted[0] if inserted else None
    if stored is None:  # the phone's customer existed, or a concurrent push just made it
        where = {"business_pk": business_pk, "phone_number": phone_number}
        [stored] = await select_rows(connection, _CUSTOMER_BY_PHONE, where)
    customer_pk, *rendered = stored
    customer = CustomerView(*rendered)
    newer: dict[str, Any] = {
        field: value
        for field, value in details.items()
        if value and getattr(customer, field) != value
    }
    if newer:
        newer["updated_at"] = now
        await connection.execute(update(Customer).where(Customer.id == customer_pk).values(newer))
        customer = replace(customer, **newer)
    return customer_pk, customer


async def insert_invoice(session: AsyncSession, values: dict[str, Any]) -> int:
    """A new invoice (columns of `Invoice`; unset ones take their defaults); its id."""
    connection = await connection_of(session)
    [(invoice_pk,)] = (await write(connection, _NEW_INVOICE, values)).returned
    return int(invoice_pk)


# Phase 3's common case, built once: Daraja accepted the push and nothing has touched the
# invoice since phase 1 committed it. Every change of an invoice (the ORM's and Core's)
# writes a new `updated_at`, so phase 1's value still being there means exactly that.
_PUSH_ACCEPTED = (
    update(Invoice)
    .where(
        Invoice.id == bindparam("invoice_pk"),
        Invoice.state == InvoiceState.PENDING,
        Invoice.updated_at == bindparam("written_at"),
    )
    .values(
        state=InvoiceState.PROCESSING,
        checkout_request_id=bindparam("accepted_checkout_id"),
        merchant_request_id=bindparam("accepted_merchant_id"),
        updated_at=bindparam("now"),
    )
)


async def mark_untouched_push_accepted(
    session: AsyncSession,
    invoice_pk: int,
    written_at: datetime,
    checkout_request_id: str,
    merchant_request_id: str,
    now: datetime,
) -> bool:
    """PENDING -> PROCESSING with Daraja's ids, if the invoice is still as phase 1 wrote it
    at `written_at`; False (and no change) if anything came first (a callback, a query)."""
    connection = await connection_of(session)
    written = await write(
        connection,
        _PUSH_ACCEPTED,
        {
            "invoice_pk": invoice_pk,
            "written_at": written_at,
            "accepted_checkout_id": checkout_request_id,
            "accepted_merchant_id": merchant_request_id,
            "now": now,
        },
    )
    return written.rowcount == 1


# ---------------------------------------------------------------- the paying business


async def invoices_by_pk(session: AnySession, invoice_pks: set[int]) -> list[Invoice]:
    return list(await session.scalars(select(Invoice).where(Invoice.id.in_(invoice_pks))))


async def mark_cleared(session: AsyncSession, invoice_pk: int) -> None:
    await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice_pk)
        .values(clearing_status=LineStatus.AVAILABLE, updated_at=utc_now())
        .execution_options(synchronize_session=False)
    )


# ---------------------------------------------------------------- callbacks


# Every callback runs these two: Core statements built once, run on the transaction's
# connection (no ORM instance, no flush of the session's changes first).
_SEEN_CALLBACK = select(
    exists().where(
        MpesaCallback.invoice_id == bindparam("invoice_pk"),
        MpesaCallback.body_sha256 == bindparam("body_sha"),
    )
)
_NEW_CALLBACK = insert(MpesaCallback)


async def seen_callback(session: AsyncSession, invoice_pk: int, body_sha: str) -> bool:
    """Whether this exact body was already received (and committed) for this invoice."""
    connection = await connection_of(session)
    where = {"invoice_pk": invoice_pk, "body_sha": body_sha}
    [(seen,)] = await select_rows(connection, _SEEN_CALLBACK, where)
    return bool(seen)


async def add_callback(session: AsyncSession, values: dict[str, Any]) -> None:
    """Store a received callback (columns of `MpesaCallback`)."""
    connection = await connection_of(session)
    await write(connection, _NEW_CALLBACK, values)


async def holds_success(session: AnySession, invoice_pk: int) -> bool:
    """Whether a success callback for this invoice still waits for M-Pesa's confirmation."""
    query = select(
        exists().where(
            MpesaCallback.invoice_id == invoice_pk,
            MpesaCallback.outcome == CallbackOutcome.AWAITING_CONFIRMATION,
        )
    )
    return bool(await session.scalar(query))


async def held_success_bodies(session: AnySession, invoice: Invoice, limit: int) -> list[str]:
    """The raw bodies of the latest success callbacks held for confirmation (or stored with an
    error) that named the invoice's checkout, newest first."""
    rows = await session.scalars(
        select(MpesaCallback.raw_body)
        .where(
            MpesaCallback.invoice_id == invoice.id,
            MpesaCallback.checkout_request_id == invoice.checkout_request_id,
            MpesaCallback.outcome.in_(
                (CallbackOutcome.AWAITING_CONFIRMATION, CallbackOutcome.ERROR)
            ),
            MpesaCallback.result_code == str(ResultCode.SUCCESS),
        )
        .order_by(MpesaCallback.id.desc())
        .limit(limit)
    )
    return list(rows.all())


async def delete_refused_callbacks(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to `limit` callbacks received before `before` that spoke for no invoice."""
    batch = select(MpesaCallback.id).where(
        MpesaCallback.invoice_id.is_(None), MpesaCallback.received_at < before
    )
    result: Any = await session.execute(
        delete(MpesaCallback).where(MpesaCallback.id.in_(batch.limit(limit)))
    )
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------- hosted checkout


async def checkout_invoices(session: AnySession, checkout_pk: int) -> list[Invoice]:
    """The invoices pushed inside one checkout session, newest first."""
    rows = await session.scalars(
        select(Invoice)
        .where(Invoice.checkout_session_id == checkout_pk)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc())
    )
    return list(rows.all())


async def link_states(session: AnySession, link_pk: int) -> dict[InvoiceState, int]:
    """How many invoices of a payment link are in each state."""
    rows = await session.execute(
        select(Invoice.state, func.count())
        .where(Invoice.payment_link_id == link_pk)
        .group_by(Invoice.state)
    )
    return {InvoiceState(state): int(count) for state, count in rows.all()}


# ---------------------------------------------------------------- the dashboard's reads


async def invoice_of(session: AnySession, business_pk: int, invoice_id: str) -> Invoice | None:
    return await session.scalar(
        select(Invoice).where(Invoice.business_id == business_pk, Invoice.invoice_id == invoice_id)
    )


async def callbacks_of(session: AnySession, invoice_pk: int) -> list[MpesaCallback]:
    rows = await session.scalars(
        select(MpesaCallback)
        .where(MpesaCallback.invoice_id == invoice_pk)
        .order_by(MpesaCallback.id)
    )
    return list(rows.all())


async def queries_of(session: AnySession, invoice_pk: int) -> list[MpesaQuery]:
    rows = await session.scalars(
        select(MpesaQuery).where(MpesaQuery.invoice_id == invoice_pk).order_by(MpesaQuery.id)
    )
    return list(rows.all())


def record_query(
    session: AsyncSession,
    invoice_pk: int,
    kind: QueryKind,
    answer: str,
    result_code: str | None = None,
    detail: str | None = None,
) -> None:
    """What reconciliation asked M-Pesa and what it answered (the payment's timeline)."""
    session.add(
        MpesaQuery(
            invoice_id=invoice_pk,
            kind=kind,
            answer=answer[:40],
            result_code=result_code[:32] if result_code else None,
            detail=detail[:300] if detail else None,
        )
    )


async def states_by_day(
    session: AnySession, business_pk: int, since: datetime
) -> list[tuple[str, InvoiceState, int, int]]:
    """Invoices created since then, per UTC day ("YYYY-MM-DD") and state: how many, and their
    value in cents. One scan of the business's recent invoices serves every overview figure."""
    day = func.date(Invoice.created_at)
    if session.get_bind().dialect.name == "postgresql":  # timestamptz: its UTC date
        day = func.date(func.timezone("UTC", Invoice.created_at))
    rows = await session.execute(
        select(day, Invoice.state, func.count(), func.coalesce(func.sum(Invoice.value_minor), 0))
        .where(Invoice.business_id == business_pk, Invoice.created_at >= since)
        .group_by(day, Invoice.state)
    )
    return [(str(when)[:10], state, int(count), int(value)) for when, state, count, value in rows]


async def failures_since(
    session: AnySession, business_pk: int, since: datetime, limit: int = 10
) -> list[tuple[str | None, str | None, int]]:
    """Failed invoices since then by result code (with one of its reasons), most first."""
    count = func.count().label("count")
    rows = await session.execute(
        select(Invoice.failed_code, func.max(Invoice.failed_reason), count)
        .where(
            Invoice.business_id == business_pk,
            Invoice.created_at >= since,
            Invoice.state == InvoiceState.FAILED,
        )
        .group_by(Invoice.failed_code)
        .order_by(count.desc())
        .limit(limit)
    )
    return [(code, reason, int(n)) for code, reason, n in rows]


async def states_of(
    session: AnySession, business_pk: int, invoice_ids: list[str]
) -> dict[str, InvoiceState]:
    rows = await session.execute(
        select(Invoice.invoice_id, Invoice.state).where(
            Invoice.business_id == business_pk, Invoice.invoice_id.in_(invoice_ids)
        )
    )
    return {invoice_id: state for invoice_id, state in rows}


async def latest_invoice(session: AnySession) -> Invoice | None:
    """The newest push of any business (the operator's Daraja health)."""
    return await session.scalar(select(Invoice).order_by(Invoice.id.desc()).limit(1))


async def invoice_id_by_reference(
    session: AnySession, business_pk: int, reference: str
) -> str | None:
    """The business's invoice with this invoice_id or this M-Pesa receipt."""
    return await session.scalar(
        select(Invoice.invoice_id)
        .where(
            Invoice.business_id == business_pk,
            (Invoice.invoice_id == reference) | (Invoice.mpesa_reference == reference),
        )
        .limit(1)
    )
