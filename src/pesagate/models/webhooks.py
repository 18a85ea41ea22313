"""Webhook endpoints, their events (the outbox) and every delivery attempt."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pesagate.kit.clock import utc_now
from pesagate.models.base import Base, BigIntId, Timestamps, enum_column


class EventStatus(StrEnum):
    PENDING = "PENDING"  # waiting for its (next) attempt
    PROCESSING = "PROCESSING"  # an attempt is in flight
    DELIVERED = "DELIVERED"  # a 2xx answer arrived in time
    FAILED = "FAILED"  # every attempt failed (or the endpoint was disabled); can be replayed


class Topic(StrEnum):
    COLLECTION = "collection_event"
    SEND_MONEY = "send_money_event"
    REVERSAL = "reversal_event"
    WALLET_TRANSFER = "wallet_transfer_event"
    TEST = "test_event"


class WebhookEndpoint(Timestamps, Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    challenge: Mapped[str] = mapped_column(String(255), doc="echoed in every payload; never listed")
    signing_secret: Mapped[str] = mapped_column(String(64), doc="whsec_…; shown once")
    is_active: Mapped[bool] = mapped_column(default=True)
    collection_event: Mapped[bool] = mapped_column(default=True)
    send_money_event: Mapped[bool] = mapped_column(default=False)
    reversal_event: Mapped[bool] = mapped_column(default=False)
    wallet_transfer_event: Mapped[bool] = mapped_column(default=False)
    failures_count: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookEvent(Timestamps, Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_order", "endpoint_id", "ordering_key", "id"),
        Index("ix_webhook_events_business", "business_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, doc="webhook-id, stable")
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(32))
    ordering_key: Mapped[str] = mapped_column(String(64), doc="events of one key go out in order")
    payload: Mapped[str] = mapped_column(Text, doc="the exact JSON body sent")
    status: Mapped[EventStatus] = mapped_column(
        enum_column(EventStatus, 12), default=EventStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(300), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    endpoint: Mapped[WebhookEndpoint] = relationship(lazy="joined", innerjoin=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utc_now)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300), default=None)
    response_excerpt: Mapped[str | None] = mapped_column(
        String(1024), default=None, doc="the start of the receiver's answer, cut short"
    )
