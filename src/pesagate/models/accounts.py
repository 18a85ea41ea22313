"""Dashboard accounts (pesagate.accounts): people, their roles in businesses, their sessions."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pesagate.models.base import Base, BigIntId, Timestamps, enum_column


class Role(StrEnum):
    """What a person may do in one business (README "Dashboard roles")."""

    OWNER = "owner"  # everything, keys and team included
    DEVELOPER = "developer"  # keys and webhooks, and everything a viewer sees
    VIEWER = "viewer"  # reads only


class User(Timestamps, Base):
    """A person who signs in to the dashboard. The password is kept only as an argon2 hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, doc="lower-cased")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_operator: Mapped[bool] = mapped_column(default=False, doc="sees every business")
    # Login throttling: consecutive failures, and until when sign-in is refused.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class Membership(Timestamps, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "business_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(enum_column(Role, 12))


class DashboardSession(Base):
    """A signed-in browser. Only the SHA-256 of its cookie is stored, so a copy of the
    database signs no one in; revoking is setting `revoked_at`."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Invitation(Base):
    """A place in a business offered to someone without an account yet: whoever opens the link
    chooses a password and joins with the role. Only the SHA-256 of the link's token is stored;
    an invitation is used once, and ends when it expires or an owner revokes it."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), doc="lower-cased")
    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(enum_column(Role, 12))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
