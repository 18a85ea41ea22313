"""Durable jobs: rows claimed by workers under a lease, so a crashed worker's jobs run again."""

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from pesagate.kit.clock import utc_now
from pesagate.models.base import Base, BigIntId


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128), unique=True, doc="one live job per key")
    payload: Mapped[str] = mapped_column(Text, default="{}")
    run_at: Mapped[datetime] = mapped_column(doc="not before; also the lease expiry when claimed")
    attempts: Mapped[int] = mapped_column(Integer, default=0, doc="runs, whatever their outcome")
    failures: Mapped[int] = mapped_column(
        Integer, default=0, doc="failed runs in a row (errors, timeouts, leases that ran out)"
    )
    lane: Mapped[str | None] = mapped_column(
        String(64), default=None, doc="the destination it calls; a worker caps its slots per lane"
    )
    locked_by: Mapped[str | None] = mapped_column(String(64), default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    dead_at: Mapped[datetime | None] = mapped_column(
        default=None, doc="set after too many failures: never claimed until retried by hand"
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        # Only live jobs are ever claimed; dead ones stay out of the claim's index.
        Index(
            "ix_jobs_due",
            "run_at",
            postgresql_where=text("dead_at IS NULL"),
            sqlite_where=text("dead_at IS NULL"),
        ),
        Index("ix_jobs_dead", "dead_at"),
    )
