"""Idempotency keys: the first completed response to a creating POST, per business and key."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pesagate.kit.clock import utc_now
from pesagate.models.base import Base, BigIntId, enum_column


class KeyState(StrEnum):
    IN_FLIGHT = "IN_FLIGHT"  # the first request is still running
    COMPLETED = "COMPLETED"  # its response is stored and replayed


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("business_id", "key"),
        Index("ix_idempotency_keys_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64), doc="sha256 of method, path and body")
    owner: Mapped[str] = mapped_column(String(32), doc="which request holds the key")
    state: Mapped[KeyState] = mapped_column(enum_column(KeyState, 12))
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    resource_pk: Mapped[int | None] = mapped_column(
        BigInteger,
        default=None,
        doc="what the request created, bound in that row's own transaction (a push: the "
        "invoice); a retry after a crash answers from it and never runs the request again",
    )
    locked_until: Mapped[datetime] = mapped_column(doc="an in-flight holder older is presumed dead")
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
