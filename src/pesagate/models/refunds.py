"""Refunds (KulmiPay chargebacks) carried out by M-Pesa reversals, and every Reversal or
Transaction Status Result received for them, raw."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pesagate.kit.clock import utc_now
from pesagate.models.base import Base, BigIntId, Timestamps, enum_column


class RefundStatus(StrEnum):
    """KulmiPay's chargeback statuses (README, "Refunds")."""

    PENDING = "PENDING"  # created, amount held; the reversal is not yet acknowledged
    PROCESSING = "PROCESSING"  # M-Pesa acknowledged the reversal; its Result is awaited
    COMPLETED = "COMPLETED"  # reversed: the REFUND entry is posted (final)
    CANCELLED = "CANCELLED"  # M-Pesa did not reverse it: the hold is released (final)
    DISPUTED = "DISPUTED"  # M-Pesa says it was already reversed elsewhere: held for review


class ResultKind(StrEnum):
    RESULT = "RESULT"  # a Reversal Result (ResultURL)
    TIMEOUT = "TIMEOUT"  # a QueueTimeOut notice
    STATUS = "STATUS"  # a Transaction Status Result


class ResultOutcome(StrEnum):
    APPLIED = "APPLIED"  # changed the refund
    DUPLICATE = "DUPLICATE"  # the same body was already received for this refund
    IGNORED = "IGNORED"  # recorded only (a final refund, or nothing learnt)
    UNKNOWN_TOKEN = "UNKNOWN_TOKEN"  # no refund has this token
    UNPARSEABLE = "UNPARSEABLE"  # not a Result body


class Refund(Timestamps, Base):
    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_business_created", "business_id", "created_at"),
        Index("ix_refunds_invoice", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    chargeback_id: Mapped[str] = mapped_column(String(16), unique=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger, doc="given back to the customer")
    wallet_debit_minor: Mapped[int] = mapped_column(BigInteger, doc="taken from the wallet")
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    reason: Mapped[str] = mapped_column(String(64))
    reason_details: Mapped[str | None] = mapped_column(String(500), default=None)
    status: Mapped[RefundStatus] = mapped_column(
        enum_column(RefundStatus, 12), default=RefundStatus.PENDING
    )
    resolution: Mapped[str] = mapped_column(String(300), default="")
    staff_created: Mapped[bool] = mapped_column(default=False)
    token: Mapped[str] = mapped_column(String(64), unique=True, doc="in its Result URLs")
    # Set, and committed, BEFORE the reversal is sent: a refund with it set is never sent
    # again; what happened is asked of Transaction Status.
    reversal_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    originator_conversation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    conversation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    reversal_receipt: Mapped[str | None] = mapped_column(String(32), default=None)
    result_code: Mapped[str | None] = mapped_column(String(32), default=None)
    status_queries: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class ReversalResult(Base):
    """Every Result posted to a refund's URLs, raw, whatever it said."""

    __tablename__ = "reversal_results"
    __table_args__ = (Index("ix_reversal_results_refund", "refund_id", "body_sha256"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"), default=None)
    kind: Mapped[ResultKind] = mapped_column(enum_column(ResultKind, 8))
    result_code: Mapped[str | None] = mapped_column(String(32), default=None)
    conversation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    body_sha256: Mapped[str] = mapped_column(String(64))
    raw_body: Mapped[str] = mapped_column(Text, doc="as received (a prefix for unknown tokens)")
    source_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    outcome: Mapped[ResultOutcome] = mapped_column(enum_column(ResultOutcome, 16))
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
