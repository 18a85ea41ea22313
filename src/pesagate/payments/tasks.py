"""Reconciliation: an invoice without a final result by prompt TTL + grace is settled by STK
query, with backoff. "Still processing" and errors are never read as failure; after
`reconcile_max_s` without a definitive answer the invoice FAILS with `NO_RESULT` (a success
that arrives later still completes it)."""

from datetime import timedelta

import structlog

from pesagate import metrics
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Invoice, InvoiceState
from pesagate.mpesa.client import DarajaClient, QueryFinal
from pesagate.payments import state
from pesagate.payments.callbacks import confirmed_receipt
from pesagate.worker.runner import ClaimedJob, RunAgainAt

log = structlog.get_logger("pesagate.reconcile")

QUERY_BACKOFF_MAX_S = 60.0
# NO_RESULT needs this many tries besides the age: a worker that was down or far behind must
# still ask M-Pesa a few times before it gives up on a payment.
MIN_TRIES_BEFORE_NO_RESULT = 3


class Reconciler:
    def __init__(self, db: Database, daraja: DarajaClient, settings: Settings) -> None:
        self.db = db
        self.daraja = daraja
        self.settings = settings

    async def __call__(self, job: ClaimedJob) -> RunAgainAt | None:
        invoice_pk = int(job.payload["invoice_pk"])
        async with self.db.read() as session:
            invoice = await session.get(Invoice, invoice_pk)
        if invoice is None or invoice.state in (InvoiceState.COMPLETE, InvoiceState.FAILED):
            return None
        if invoice.checkout_request_id is not None:
            answer = await self.daraja.stk_query(invoice.checkout_request_id)
            metrics.DARAJA_CALLS.labels("stk_query", type(answer).__name__).inc()
            if isinstance(answer, QueryFinal):
                await self._apply(invoice_pk, answer)
                return None
            log.info("query not final", invoice_id=invoice.invoice_id, answer=type(answer).__name__)
        if self._gave_up(invoice) and job.attempts >= MIN_TRIES_BEFORE_NO_RESULT:
            await self._no_result(invoice_pk)
            return None
        return RunAgainAt(utc_now() + timedelta(seconds=self._backoff_s(job.attempts)))

    def _backoff_s(self, attempts: int) -> float:
        delay_s: float = self.settings.reconcile_backoff_s * 2.0 ** max(attempts - 1, 0)
        return min(delay_s, QUERY_BACKOFF_MAX_S)

    def _gave_up(self, invoice: Invoice) -> bool:
        age_s = (utc_now() - invoice.created_at).total_seconds()
        return age_s >= self.settings.reconcile_max_s

    async def _apply(self, invoice_pk: int, answer: QueryFinal) -> None:
        async with self.db.transaction() as session:
            invoice = await state.lock_invoice(session, id=invoice_pk)
            assert invoice is not None
            if answer.result_code == "0":
                # A query carries no receipt; a success callback held for confirmation does.
                receipt = await confirmed_receipt(session, invoice_pk)
                changed = await state.complete(session, invoice, receipt)
            else:
                changed = await state.fail(session, invoice, answer.result_code, answer.result_desc)
        log.info(
            "reconciled by query", invoice_pk=invoice_pk, code=answer.result_code, changed=changed
        )

    async def _no_result(self, invoice_pk: int) -> None:
        async with self.db.transaction() as session:
            invoice = await state.lock_invoice(session, id=invoice_pk)
            assert invoice is not None
            reason = "M-Pesa gave no final result in time; a late success still completes it."
            changed = await state.fail(session, invoice, state.NO_RESULT_CODE, reason)
        log.warning("invoice failed without result", invoice_pk=invoice_pk, changed=changed)
