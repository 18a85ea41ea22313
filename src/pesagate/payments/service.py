"""Creating an STK push collection and sending it to Daraja.

The push is the one deliberate exception to "one transaction per request", written as three
explicit phases: (1) commit the invoice, its customer and its reconciliation job; (2) call
Daraja outside any transaction; (3) commit what Daraja answered. A crash after (1) leaves a
PENDING invoice that reconciliation resolves; nothing is ever pushed twice.
"""

from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate import metrics
from pesagate.config import Settings
from pesagate.db import Database, insert_ignore
from pesagate.errors import NotFound
from pesagate.kit import ids
from pesagate.kit.clock import utc_now
from pesagate.kit.phones import mask_msisdn
from pesagate.merchants.auth import Principal
from pesagate.models import Business, Customer, Invoice, Wallet, WalletType
from pesagate.mpesa.client import (
    DarajaClient,
    PushAccepted,
    PushNotSent,
    PushRejected,
    PushResult,
    PushUnknown,
)
from pesagate.payments import state
from pesagate.payments.fees import effective_tariff, quote
from pesagate.payments.schemas import (
    API_REF_DEFAULT,
    PaymentContext,
    StkPushRequest,
    validate_body,
)
from pesagate.webhooks.emit import collection_event
from pesagate.worker.jobs import add_job

log = structlog.get_logger("pesagate.payments")

RECONCILE_JOB = state.RECONCILE_JOB


async def create_invoice(
    session: AsyncSession,
    settings: Settings,
    business: Business,
    settlement: Wallet,
    request: StkPushRequest,
) -> Invoice:
    """Phase 1: the invoice, its customer and its reconciliation job, in one transaction."""
    customer = await upsert_customer(session, business.id, request)
    tariff = effective_tariff(request.mobile_tarrif, business)
    priced = quote(request.amount, tariff, business)
    wallet = request.wallet_id or settlement
    invoice = Invoice(
        invoice_id=ids.invoice_id(),
        session_id=ids.session_id(),
        business_id=business.id,
        customer_id=customer.id,
        wallet_id=wallet.id,
        environment=settings.env,
        amount_minor=priced.amount_minor,
        value_minor=priced.value_minor,
        charges_minor=priced.charges_minor,
        net_amount_minor=priced.net_minor,
        mobile_tarrif=tariff,
        account=request.phone_number,
        api_ref=request.api_ref or API_REF_DEFAULT,
        callback_token=ids.callback_token(),
        host=settings.public_url,
    )
    session.add(invoice)
    await session.flush()
    invoice.customer, invoice.wallet = customer, wallet
    await collection_event(session, invoice)
    first_query_at = utc_now() + timedelta(
        seconds=settings.stk_prompt_ttl_s + settings.reconcile_grace_s
    )
    add_job(
        session,
        RECONCILE_JOB,
        state.reconcile_job_key(invoice.id),
        first_query_at,
        {"invoice_pk": invoice.id},
    )
    return invoice


async def upsert_customer(
    session: AsyncSession, business_pk: int, request: StkPushRequest
) -> Customer:
    """One customer per business and phone; newer details fill in or replace older ones."""
    await insert_ignore(
        session,
        Customer,
        {
            "customer_id": ids.customer_id(),
            "business_id": business_pk,
            "phone_number": request.phone_number,
            "created_at": utc_now(),
            "updated_at": utc_now(),
            "country": "KE",
            "provider": "M-PESA",
        },
    )
    customer = await session.scalar(
        select(Customer).where(
            Customer.business_id == business_pk, Customer.phone_number == request.phone_number
        )
    )
    assert customer is not None
    for field in ("email", "first_name", "last_name"):
        value = getattr(request, field)
        if value and getattr(customer, field) != value:
            setattr(customer, field, value)
    return customer


async def send_push(
    daraja: DarajaClient, settings: Settings, invoice: Invoice, short_name: str
) -> PushResult:
    """Phase 2: ask Daraja to prompt the customer. Never inside a transaction."""
    result = await daraja.stk_push(
        phone_number=invoice.account,
        amount=invoice.value_minor // 100,
        account_reference=invoice.invoice_id,
        transaction_desc=short_name,
        callback_url=f"{settings.public_url.rstrip('/')}/callbacks/stk/{invoice.callback_token}",
    )
    metrics.DARAJA_CALLS.labels("stk_push", type(result).__name__).inc()
    log.info(
        "stk push sent",
        invoice_id=invoice.invoice_id,
        phone=mask_msisdn(invoice.account),
        outcome=type(result).__name__,
    )
    return result


async def record_push_result(db: Database, invoice_pk: int, result: PushResult) -> Invoice:
    """Phase 3: store what Daraja answered, under the invoice's lock. A callback may already
    have decided the invoice (it can beat the push response): then only the ids are kept."""
    async with db.transaction() as session:
        invoice = await state.lock_invoice(session, id=invoice_pk)
        assert invoice is not None
        match result:
            case PushAccepted():
                invoice.checkout_request_id = (
                    invoice.checkout_request_id or result.checkout_request_id
                )
                invoice.merchant_request_id = (
                    invoice.merchant_request_id or result.merchant_request_id
                )
                await state.mark_processing(session, invoice)
            case PushRejected():
                invoice.push_error = result.raw
                await state.fail(session, invoice, result.error_code, result.error_message)
            case PushNotSent():
                invoice.push_error = result.reason
                await state.fail(session, invoice, "PUSH_NOT_SENT", result.reason)
            case PushUnknown():
                # The outcome is unknown: the invoice stays PENDING for its callback or for
                # reconciliation. Pushing again could charge the customer twice.
                invoice.push_error = result.reason
    return invoice


async def payment_context(db: Database, business_pk: int) -> PaymentContext:
    async with db.read() as session:
        business = await session.get(Business, business_pk)
        if business is None:
            raise NotFound("Business not found.")
        wallets = (
            await session.scalars(select(Wallet).where(Wallet.business_id == business_pk))
        ).all()
    return PaymentContext(business, {wallet.wallet_id: wallet for wallet in wallets})


def settlement_of(context: PaymentContext) -> Wallet:
    for wallet in context.wallets.values():
        if wallet.wallet_type == WalletType.SETTLEMENT and wallet.currency == "KES":
            return wallet
    raise NotFound("The business has no KES settlement wallet.")


async def collect(
    db: Database,
    daraja: DarajaClient,
    settings: Settings,
    principal: Principal,
    body: dict[str, Any],
    model: type[StkPushRequest],
) -> Invoice:
    """Validate, then run the three phases. Invalid requests store nothing."""
    context = await payment_context(db, principal.business_pk)
    request = validate_body(model, body, context)
    async with db.transaction() as session:
        invoice = await create_invoice(
            session, settings, context.business, settlement_of(context), request
        )
    result = await send_push(daraja, settings, invoice, context.business.short_name)
    return await record_push_result(db, invoice.id, result)


async def find_invoice(db: Database, business_pk: int, invoice_id: str) -> Invoice:
    """An invoice of this business, with its customer and wallet, for display only (not an ORM
    instance: never to be changed or added to a session); another business's id is as unknown
    as a made-up one."""
    async with db.read() as session:
        result = await session.execute(
            _INVOICE_VIEW, {"invoice_id": invoice_id, "business_pk": business_pk}
        )
        row = result.first()
    if row is None:
        raise NotFound("No invoice matches the given query.")
    return _invoice_from_view(row._mapping)


# The status endpoint's one query, built once: plain columns, so no ORM loading per row (the
# joined-load row processing was ~40% of a status request's CPU in bench/profile.py).
_INVOICES, _CUSTOMERS = Invoice.__table__, Customer.__table__
_INVOICE_VIEW = (
    select(
        _INVOICES,
        Wallet.__table__.c.wallet_id.label("view_wallet_id"),
        *(column.label(f"view_customer_{column.name}") for column in _CUSTOMERS.c),
    )
    .join(_CUSTOMERS, _CUSTOMERS.c.id == _INVOICES.c.customer_id)
    .join(Wallet.__table__, Wallet.__table__.c.id == _INVOICES.c.wallet_id)
    .where(
        _INVOICES.c.invoice_id == bindparam("invoice_id"),
        _INVOICES.c.business_id == bindparam("business_pk"),
    )
)


def _invoice_from_view(row: Any) -> Invoice:
    """A read-only stand-in with the attributes the views read: building mapped instances
    (instrumented attribute events for ~40 columns) cost as much as the query."""
    invoice = SimpleNamespace(**{column.key: row[column.name] for column in _INVOICES.c})
    invoice.customer = SimpleNamespace(
        **{column.key: row[f"view_customer_{column.name}"] for column in _CUSTOMERS.c}
    )
    invoice.wallet = SimpleNamespace(wallet_id=row["view_wallet_id"])
    return cast(Invoice, invoice)
