"""Payments' use cases: the STK push, and the reads that render invoices. Each takes the
`Database` and opens its own units of work; the SQL is in `repository.py`.

The push is the one deliberate exception to "one transaction per use case", written as three
explicit phases: (1) commit the invoice, its customer and its reconciliation job; (2) call
Daraja outside any transaction; (3) commit what Daraja answered. A crash after (1) leaves a
PENDING invoice that reconciliation resolves; nothing is ever pushed twice.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from weakref import WeakKeyDictionary

import structlog

from pesagate import metrics
from pesagate.config import Settings
from pesagate.db import AsyncSession, Database
from pesagate.errors import NotFound
from pesagate.idempotency import service as idempotency
from pesagate.idempotency.service import Claim
from pesagate.kit import ids
from pesagate.kit.api import validate_body
from pesagate.kit.clock import utc_now
from pesagate.kit.pagination import Page
from pesagate.kit.phones import mask_msisdn
from pesagate.ledger.wallets import wallets_of
from pesagate.merchants import service as merchants
from pesagate.merchants.auth import Principal
from pesagate.merchants.fees import Quote, effective_tariff, quote
from pesagate.merchants.ratelimit import PromptLimiter
from pesagate.models import Environment, Invoice, InvoiceState, Tariff
from pesagate.mpesa.client import (
    DarajaClient,
    PushAccepted,
    PushNotSent,
    PushRejected,
    PushResult,
    PushUnknown,
)
from pesagate.payments import repository, state
from pesagate.payments.events import collection_event
from pesagate.payments.repository import InvoiceFilter
from pesagate.payments.schemas import (
    API_REF_DEFAULT,
    EstimateRequest,
    PaymentContext,
    StkPushRequest,
)
from pesagate.payments.sessions import InvoiceOrigin
from pesagate.payments.views import InvoiceView, WalletRef
from pesagate.worker.jobs import add_job

log = structlog.get_logger("pesagate.payments")

RECONCILE_JOB = state.RECONCILE_JOB


# ---------------------------------------------------------------- the push


async def collect(
    db: Database,
    daraja: DarajaClient,
    settings: Settings,
    principal: Principal,
    body: dict[str, Any],
    model: type[StkPushRequest],
    held: Claim | None = None,
    prompts: PromptLimiter | None = None,
) -> Invoice | InvoiceView:
    """Validate, count the prompt against its limits, then run the three phases. Invalid or
    throttled requests store nothing. An Idempotency-Key is bound to the invoice in phase 1,
    so a retry can never push again."""
    context = await push_context(db, principal.business_pk, body.get("wallet_id"))
    request = validate_body(model, body, context)
    if prompts is not None:
        await prompts.check(principal.key_lookup, request.phone_number)
    # Phase 1 commits before Daraja is called: the designed exception (module docstring).
    async with db.transaction() as session:
        invoice = await create_invoice(session, settings, context, request)
        await idempotency.bind(session, held, invoice.id)
    # Phase 2, outside any transaction.
    result = await send_push(daraja, settings, invoice, context.business.short_name)
    # Phase 3, a transaction of its own.
    return await record_push_result(db, invoice, result)


@dataclass(frozen=True, slots=True)
class NewInvoice:
    """Phase 1's invoice: its id, what phase 2 sends to Daraja, and what it is rendered as."""

    id: int
    business_pk: int
    callback_token: str
    view: InvoiceView


async def create_invoice(
    session: AsyncSession,
    settings: Settings,
    context: PaymentContext,
    request: StkPushRequest,
    origin: InvoiceOrigin | None = None,
) -> NewInvoice:
    """Phase 1: the invoice, its customer and its reconciliation job, in one transaction.
    `origin`: the checkout session (and payment link) it is pushed inside. Written with Core
    statements: no ORM instance is built on the push path."""
    business = context.business
    wallet = context.wallet_to_credit(request.wallet_id)
    customer_pk, customer = await repository.upsert_customer(
        session,
        business.id,
        request.phone_number,
        {"email": request.email, "first_name": request.first_name, "last_name": request.last_name},
    )
    priced = quote(request.amount, effective_tariff(request.mobile_tarrif, business), business)
    now = utc_now()
    # Every rendered column is given here, so the row and its rendering cannot disagree.
    rendered: dict[str, Any] = {
        "invoice_id": ids.invoice_id(),
        "session_id": ids.session_id(),
        "state": InvoiceState.PENDING,
        "provider": "M-PESA",
        "value_minor": priced.value_minor,
        "charges_minor": priced.charges_minor,
        "net_amount_minor": priced.net_minor,
        "refunded_minor": 0,
        "currency": "KES",
        "account": request.phone_number,
        "api_ref": request.api_ref or API_REF_DEFAULT,
        "mobile_tarrif": priced.tariff,
        "clearing_status": None,
        "mpesa_reference": None,
        "host": settings.public_url,
        "retry_count": 0,
        "failed_reason": None,
        "failed_code": None,
        "created_at": now,
        "updated_at": now,
        "checkout_session_id": origin.checkout_pk if origin else None,
        "payment_link_id": origin.payment_link_pk if origin else None,
    }
    token = ids.callback_token()
    invoice_pk = await repository.insert_invoice(
        session,
        rendered
        | {
            "business_id": business.id,
            "customer_id": customer_pk,
            "wallet_id": wallet.id,
            "environment": Environment(settings.env),
            "amount_minor": priced.amount_minor,
            "callback_token": token,
        },
    )
    view = InvoiceView(customer, WalletRef(wallet.wallet_id), **rendered)
    await collection_event(session, business.id, invoice_pk, view)
    first_query_at = now + timedelta(seconds=settings.stk_prompt_ttl_s + settings.reconcile_grace_s)
    await add_job(
        session,
        RECONCILE_JOB,
        state.reconcile_job_key(invoice_pk),
        first_query_at,
        {"invoice_pk": invoice_pk},
    )
    return NewInvoice(invoice_pk, business.id, token, view)


async def send_push(
    daraja: DarajaClient, settings: Settings, invoice: NewInvoice, short_name: str
) -> PushResult:
    """Phase 2: ask Daraja to prompt the customer. Never inside a transaction."""
    view = invoice.view
    result = await daraja.stk_push(
        phone_number=view.account,
        amount=view.value_minor // 100,
        account_reference=view.invoice_id,
        transaction_desc=short_name,
        callback_url=f"{settings.public_url.rstrip('/')}/callbacks/stk/{invoice.callback_token}",
    )
    metrics.DARAJA_CALLS.labels("stk_push", type(result).__name__).inc()
    log.info(
        "stk push sent",
        invoice_id=view.invoice_id,
        phone=mask_msisdn(view.account),
        outcome=type(result).__name__,
    )
    return result


async def record_push_result(
    db: Database, invoice: NewInvoice, result: PushResult
) -> Invoice | InvoiceView:
    """Phase 3: store what Daraja answered, under the invoice's lock. A callback may already
    have decided the invoice (it can beat the push response): then only the ids are kept."""
    async with db.transaction() as session:
        if isinstance(result, PushAccepted):
            # The common case, without loading the row: nothing came first.
            accepted = await _accept_untouched(session, invoice, result)
            if accepted is not None:
                return accepted
        locked = await repository.lock_invoice(session, id=invoice.id)
        assert locked is not None
        match result:
            case PushAccepted():
                _keep_push_ids(locked, result)
                await state.mark_processing(session, locked)
            case PushRejected():
                locked.push_error = result.raw
                await state.fail(session, locked, result.error_code, result.error_message)
            case PushNotSent():
                locked.push_error = result.reason
                await state.fail(session, locked, "PUSH_NOT_SENT", result.reason)
            case PushUnknown():
                # The outcome is unknown: the invoice stays PENDING for its callback or for
                # reconciliation. Pushing again could charge the customer twice.
                locked.push_error = result.reason
    return locked


async def _accept_untouched(
    session: AsyncSession, invoice: NewInvoice, result: PushAccepted
) -> InvoiceView | None:
    """What `state.mark_processing` does for an invoice still as phase 1 wrote it, in one
    UPDATE; None if something changed it since (the locked path then decides)."""
    now = utc_now()
    if not await repository.mark_untouched_push_accepted(
        session,
        invoice.id,
        invoice.view.updated_at,
        result.checkout_request_id,
        result.merchant_request_id,
        now,
    ):
        return None
    view = replace(invoice.view, state=InvoiceState.PROCESSING, updated_at=now)
    await state.announce(session, invoice.business_pk, invoice.id, view)
    return view


def _keep_push_ids(invoice: Invoice, result: PushAccepted) -> None:
    """Daraja's own answer to our push is the authority on the checkout's ids: a callback
    that came first only lent them (and its success waits for confirmation)."""
    if invoice.checkout_request_id not in (None, result.checkout_request_id):
        log.warning(
            "a callback named another checkout than the push response",
            invoice_id=invoice.invoice_id,
            callback_checkout=invoice.checkout_request_id,
        )
    invoice.checkout_request_id = result.checkout_request_id
    invoice.merchant_request_id = result.merchant_request_id


# ---------------------------------------------------------------- reads


async def payment_context(db: Database, business_pk: int) -> PaymentContext:
    """The paying business and its wallets, which validation checks requests against: read
    with Core on one connection."""
    async with db.read_one() as connection:
        business = await merchants.business_view(connection, business_pk)
        wallets = await wallets_of(connection, business_pk)
    return PaymentContext(business, {wallet.wallet_id: wallet for wallet in wallets})


# A push's context is kept per process and database for PUSH_CONTEXT_TTL_S: reading it was ~6%
# of a push's CPU (`bench.profile push`). A change of the business's terms made through this
# process applies to the next push (merchants counts them); one made elsewhere (another node,
# the CLI) within PUSH_CONTEXT_TTL_S. A wallet the push names that the kept context does not
# know is looked for again, so a wallet just opened anywhere can be paid into at once.
PUSH_CONTEXT_TTL_S = 1.0
PUSH_CONTEXTS_KEPT = 1_000
_KeptContext = tuple[float, int, PaymentContext]  # until (monotonic), business changes, context
_PUSH_CONTEXTS: "WeakKeyDictionary[Database, dict[int, _KeptContext]]" = WeakKeyDictionary()


async def push_context(
    db: Database,
    business_pk: int,
    wallet_id: object,
    clock: Callable[[], float] = time.monotonic,
) -> PaymentContext:
    """`payment_context` for a push, kept (see PUSH_CONTEXT_TTL_S); `wallet_id`: the wallet
    the push names, as sent (None when it names none)."""
    changes = merchants.changes_of(db, business_pk)  # before reading: a change meanwhile wins
    contexts = _PUSH_CONTEXTS.setdefault(db, {})
    kept = contexts.get(business_pk)
    if kept is not None:
        until, kept_changes, context = kept
        unknown_wallet = isinstance(wallet_id, str) and wallet_id not in context.wallets
        if until > clock() and kept_changes == changes and not unknown_wallet:
            return context
    context = await payment_context(db, business_pk)
    if len(contexts) >= PUSH_CONTEXTS_KEPT:
        contexts.clear()
    contexts[business_pk] = (clock() + PUSH_CONTEXT_TTL_S, changes, context)
    return context


async def estimate(db: Database, business_pk: int, body: dict[str, Any]) -> Quote:
    """What a payment will cost, under the business's own tariff and limits."""
    context = await payment_context(db, business_pk)
    request = validate_body(EstimateRequest, body, context)
    tariff: Tariff = effective_tariff(request.tarrif, context.business)
    return quote(request.amount, tariff, context.business)


async def invoice_by_pk(db: Database, invoice_pk: int) -> Invoice:
    """An invoice with its customer and wallet (joined loads), for display."""
    async with db.read() as session:
        invoice = await repository.invoice_by_pk(session, invoice_pk)
    if invoice is None:
        raise NotFound("No invoice matches the given query.")
    return invoice


async def find_invoice(db: Database, business_pk: int, invoice_id: str) -> InvoiceView:
    """An invoice of this business, for display; another business's id is as unknown as a
    made-up one."""
    view = await repository.invoice_view(db, business_pk, invoice_id)
    if view is None:
        raise NotFound("No invoice matches the given query.")
    return view


async def list_invoices(
    db: Database, business_pk: int, where: InvoiceFilter, page: Page, count_cap: int | None = None
) -> tuple[int, list[Invoice]]:
    """How many of the business's invoices match (at most `count_cap` + 1 when given), and the
    page asked for, newest first."""
    async with db.read() as session:
        return await repository.invoices_page(
            session, business_pk, where, page.offset, page.size, count_cap
        )
