"""The refund's job (`refund_reversal`): sends the reversal once, then settles a refund whose
Result does not come by asking Transaction Status about the payment, with backoff, until a
Result decides it. It never sends a reversal twice (`service.claim_sending`)."""

from datetime import datetime, timedelta

import structlog

from pesagate import metrics
from pesagate.config import Settings
from pesagate.db import Database
from pesagate.kit.clock import utc_now
from pesagate.models import Refund, RefundStatus
from pesagate.mpesa.client import DarajaClient, RequestNotSent
from pesagate.refunds import service, state
from pesagate.worker.runner import ClaimedJob, RunAgainAt

log = structlog.get_logger("pesagate.refunds")

STATUS_BACKOFF_MAX_S = 600.0
NOT_SENT_RETRY_S = 30.0


class RefundProcessor:
    def __init__(self, db: Database, daraja: DarajaClient, settings: Settings) -> None:
        self.db = db
        self.daraja = daraja
        self.settings = settings

    def url(self, token: str, kind: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/callbacks/reversal/{token}/{kind}"

    async def __call__(self, job: ClaimedJob) -> RunAgainAt | None:
        refund = await service.refund_by_pk(self.db, int(job.payload["refund_pk"]))
        if refund is None or refund.status in state.FINAL:
            return None
        if refund.status == RefundStatus.PENDING and refund.reversal_sent_at is None:
            return await self._send(refund)
        result_due = self._result_due(refund)
        if result_due > utc_now():
            return RunAgainAt(result_due)
        await self._ask_status(refund)
        return RunAgainAt(utc_now() + timedelta(seconds=self._backoff_s(refund.status_queries)))

    async def _send(self, refund: Refund) -> RunAgainAt:
        sending = await service.claim_sending(self.db, refund.id)
        if sending is None:  # another run committed the intent: never send twice
            return RunAgainAt(utc_now() + timedelta(seconds=self.settings.refund_result_wait_s))
        answer = await self.daraja.reverse(
            receipt=sending.receipt,
            amount=sending.amount_minor // 100,
            result_url=self.url(sending.token, "result"),
            timeout_url=self.url(sending.token, "timeout"),
            remarks=f"Refund {sending.chargeback_id}: {sending.reason}",
            occasion=sending.chargeback_id,
        )
        metrics.DARAJA_CALLS.labels("reversal", type(answer).__name__).inc()
        log.info("reversal sent", chargeback_id=sending.chargeback_id, answer=type(answer).__name__)
        await service.record_acknowledgement(self.db, refund.id, answer)
        if isinstance(answer, RequestNotSent):
            return RunAgainAt(utc_now() + timedelta(seconds=NOT_SENT_RETRY_S))
        return RunAgainAt(utc_now() + timedelta(seconds=self.settings.refund_result_wait_s))

    def _result_due(self, refund: Refund) -> datetime:
        sent_at = refund.reversal_sent_at or refund.created_at
        return sent_at + timedelta(seconds=self.settings.refund_result_wait_s)

    async def _ask_status(self, refund: Refund) -> None:
        receipt = await service.refund_receipt(self.db, refund)
        answer = await self.daraja.transaction_status(
            receipt=receipt,
            result_url=self.url(refund.token, "status"),
            timeout_url=self.url(refund.token, "status-timeout"),
            remarks=f"Reconcile refund {refund.chargeback_id}",
        )
        metrics.DARAJA_CALLS.labels("transaction_status", type(answer).__name__).inc()
        log.info(
            "transaction status asked",
            chargeback_id=refund.chargeback_id,
            answer=type(answer).__name__,
        )
        await service.note_status_query(self.db, refund.id)

    def _backoff_s(self, queries: int) -> float:
        delay_s: float = self.settings.refund_status_backoff_s * 2.0 ** max(queries - 1, 0)
        return min(delay_s, STATUS_BACKOFF_MAX_S)
