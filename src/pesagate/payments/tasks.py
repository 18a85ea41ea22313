"""Reconciliation: an invoice without a final result by prompt TTL + grace is settled by STK
query, with backoff. "Still processing" and errors are never read as failure; after
`reconcile_max_s` without a definitive answer the invoice FAILS with `NO_RESULT` (a success
that arrives later still completes it).

With Pull Transactions enabled, M-Pesa's statement settles what a query cannot: an invoice
whose CheckoutRequestID was never learnt (a lost push response, or a crash before it was
stored) is looked up on every run, and any invoice is looked up once more before `NO_RESULT`.
An unreadable statement postpones `NO_RESULT` (up to `STATEMENT_PATIENCE` x `reconcile_max_s`):
it says nothing about whether the customer paid. So does a success callback held for
confirmation: it is M-Pesa's query (or statement) that credits it, never the callback alone,
and a FAILED invoice with such a callback is queried too (FAILED -> COMPLETE only on M-Pesa's
own answer). A query says that the customer paid, never with which receipt: while Transaction
Status can be asked, a paid invoice with held callbacks waits for M-Pesa to name the receipt, on
its statement or by confirming one of the held receipts (`payments/receipts.py`); past
`reconcile_max_s` it completes without a receipt, never with one that may be made up."""

from datetime import timedelta
from enum import Enum

import structlog

from pesagate import metrics
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Invoice, InvoiceState, QueryKind
from pesagate.mpesa.client import DarajaClient, QueryFinal
from pesagate.payments import repository, state
from pesagate.payments.callbacks import held_success_receipts
from pesagate.payments.receipts import ask_about_receipts
from pesagate.payments.statement import StatementCheck, check_statement, remember_query
from pesagate.worker.runner import ClaimedJob, RunAgainAt

log = structlog.get_logger("pesagate.reconcile")

QUERY_BACKOFF_MAX_S = 60.0
# NO_RESULT needs this many tries besides the age: a worker that was down or far behind must
# still ask M-Pesa a few times before it gives up on a payment.
MIN_TRIES_BEFORE_NO_RESULT = 3
# While the statement cannot be read, NO_RESULT waits until this many times reconcile_max_s.
STATEMENT_PATIENCE = 2


class QueryVerdict(Enum):
    """What an STK query settled: the invoice (SETTLED), that the customer paid while the
    receipt is still to be confirmed (PAID), or nothing yet (OPEN)."""

    SETTLED = "settled"
    PAID = "paid"
    OPEN = "open"


NO_RESULT_REASON = "M-Pesa gave no final result in time; a late success still completes it."
UNREAD_STATEMENT_REASON = "M-Pesa gave no final result in time and its statement could not be read."
UNCONFIRMED_REASON = "A success callback could not be confirmed with M-Pesa in time."


class Reconciler:
    def __init__(self, db: Database, daraja: DarajaClient, settings: Settings) -> None:
        self.db = db
        self.daraja = daraja
        self.settings = settings

    async def __call__(self, job: ClaimedJob) -> RunAgainAt | None:
        async with self.db.read(snapshot=True) as session:
            invoice = await repository.invoice_by_pk(session, int(job.payload["invoice_pk"]))
            held_success = invoice is not None and await repository.holds_success(
                session, invoice.id
            )
        if invoice is None:
            return None
        if invoice.state == InvoiceState.COMPLETE:
            return await self._receipt_still_unknown(invoice, held_success, job.attempts)
        if invoice.state == InvoiceState.FAILED and not held_success:
            return None
        giving_up = self._gave_up(invoice) and job.attempts >= MIN_TRIES_BEFORE_NO_RESULT
        query = QueryVerdict.OPEN
        if invoice.checkout_request_id is not None:
            query = await self._query(invoice)
            if query is QueryVerdict.SETTLED:
                return None
        if query is QueryVerdict.PAID:
            return await self._paid_receipt_unconfirmed(invoice, giving_up, job.attempts)
        if held_success and self.settings.transaction_status_enabled:
            # M-Pesa's word by receipt: its Result completes the invoice (payments/receipts.py).
            await ask_about_receipts(self.db, self.daraja, self.settings, invoice)
        reason = NO_RESULT_REASON
        if held_success and giving_up:
            giving_up, reason = self._statement_overdue(invoice), UNCONFIRMED_REASON
        if self._wants_statement(invoice, giving_up):
            check = await check_statement(self.db, self.daraja, invoice)
            if check is StatementCheck.SETTLED:
                return None
            if check is StatementCheck.UNKNOWN:
                giving_up = giving_up and self._statement_overdue(invoice)
                reason = UNREAD_STATEMENT_REASON
        if giving_up:
            await self._no_result(invoice.id, reason)
            return None
        return self._again(job.attempts)

    async def _query(self, invoice: Invoice) -> QueryVerdict:
        assert invoice.checkout_request_id is not None
        answer = await self.daraja.stk_query(invoice.checkout_request_id)
        metrics.DARAJA_CALLS.labels("stk_query", type(answer).__name__).inc()
        if isinstance(answer, QueryFinal):
            return await self._apply(invoice.id, answer)
        log.info("query not final", invoice_id=invoice.invoice_id, answer=type(answer).__name__)
        await remember_query(self.db, invoice.id, QueryKind.STK_QUERY, type(answer).__name__)
        return QueryVerdict.OPEN

    async def _paid_receipt_unconfirmed(
        self, invoice: Invoice, giving_up: bool, attempts: int
    ) -> RunAgainAt | None:
        """M-Pesa says the customer paid, not with which of the held receipts. Its statement
        names the receipt, when it can be read; else Transaction Status is asked about each
        held receipt. Past `reconcile_max_s` the invoice completes without a receipt rather
        than with one that may be made up."""
        pull = self.settings.pull_transactions_enabled
        if pull and await check_statement(self.db, self.daraja, invoice) is StatementCheck.SETTLED:
            return None
        await ask_about_receipts(self.db, self.daraja, self.settings, invoice)
        if not giving_up:
            return self._again(attempts)
        async with self.db.transaction() as session:
            locked = await repository.lock_invoice(session, id=invoice.id)
            assert locked is not None
            changed = await state.complete(session, locked, None)
        log.warning("paid, receipt unconfirmed", invoice_id=invoice.invoice_id, changed=changed)
        return None

    async def _receipt_still_unknown(
        self, invoice: Invoice, held_success: bool, attempts: int
    ) -> RunAgainAt | None:
        """Paid without a receipt, and a success callback came since: Transaction Status is
        asked about its receipt (a few times: a Result may be lost); its Result fills it in."""
        if invoice.mpesa_reference is not None or not held_success:
            return None
        if not self.settings.transaction_status_enabled:
            return None
        await ask_about_receipts(self.db, self.daraja, self.settings, invoice)
        return self._again(attempts) if attempts < MIN_TRIES_BEFORE_NO_RESULT else None

    def _again(self, attempts: int) -> RunAgainAt:
        return RunAgainAt(utc_now() + timedelta(seconds=self._backoff_s(attempts)))

    def _wants_statement(self, invoice: Invoice, giving_up: bool) -> bool:
        """Without a CheckoutRequestID only the statement can tell; with one, it is the last
        word before NO_RESULT."""
        if not self.settings.pull_transactions_enabled:
            return False
        return invoice.checkout_request_id is None or giving_up

    def _backoff_s(self, attempts: int) -> float:
        delay_s: float = self.settings.reconcile_backoff_s * 2.0 ** max(attempts - 1, 0)
        return min(delay_s, QUERY_BACKOFF_MAX_S)

    def _gave_up(self, invoice: Invoice) -> bool:
        return self._age_s(invoice) >= self.settings.reconcile_max_s

    def _statement_overdue(self, invoice: Invoice) -> bool:
        return self._age_s(invoice) >= self.settings.reconcile_max_s * STATEMENT_PATIENCE

    @staticmethod
    def _age_s(invoice: Invoice) -> float:
        return (utc_now() - invoice.created_at).total_seconds()

    async def _apply(self, invoice_pk: int, answer: QueryFinal) -> QueryVerdict:
        async with self.db.transaction() as session:
            invoice = await repository.lock_invoice(session, id=invoice_pk)
            assert invoice is not None
            repository.record_query(
                session,
                invoice_pk,
                QueryKind.STK_QUERY,
                "QueryFinal",
                answer.result_code,
                answer.result_desc,
            )
            if answer.result_code != "0":
                changed = await state.fail(session, invoice, answer.result_code, answer.result_desc)
            else:
                # A query carries no receipt. Held success callbacks do, but any of them may be
                # made up: Transaction Status decides which is M-Pesa's, when it can be asked.
                receipts = await held_success_receipts(session, invoice)
                if receipts and self.settings.transaction_status_enabled:
                    log.info("paid, receipt to confirm", invoice_pk=invoice_pk)
                    return QueryVerdict.PAID
                receipt = receipts[0] if len(receipts) == 1 else None  # several: none is sure
                changed = await state.complete(session, invoice, receipt)
        log.info(
            "reconciled by query", invoice_pk=invoice_pk, code=answer.result_code, changed=changed
        )
        return QueryVerdict.SETTLED

    async def _no_result(self, invoice_pk: int, reason: str) -> None:
        async with self.db.transaction() as session:
            invoice = await repository.lock_invoice(session, id=invoice_pk)
            assert invoice is not None
            changed = await state.fail(session, invoice, state.NO_RESULT_CODE, reason)
        log.warning("invoice failed without result", invoice_pk=invoice_pk, changed=changed)
