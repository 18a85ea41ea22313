"""The accounts' tables: users, memberships, dashboard sessions. Every statement on them is
here; callers pass their session (the transaction is theirs)."""

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.db import AnySession
from pesagate.models import Business, DashboardSession, Membership, User


async def user_by_email(session: AnySession, email: str, *, lock: bool = False) -> User | None:
    statement = select(User).where(User.email == email)
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement)


async def user_by_pk(session: AnySession, user_pk: int) -> User | None:
    return await session.get(User, user_pk)


async def membership(session: AnySession, user_pk: int, business_pk: int) -> Membership | None:
    return await session.scalar(
        select(Membership).where(
            Membership.user_id == user_pk, Membership.business_id == business_pk
        )
    )


async def businesses_of(session: AnySession, user_pk: int) -> list[tuple[Business, Membership]]:
    rows = await session.execute(
        select(Business, Membership)
        .join(Membership, Membership.business_id == Business.id)
        .where(Membership.user_id == user_pk)
        .order_by(Business.name, Business.id)
    )
    return [(business, member) for business, member in rows]


async def members_of(session: AnySession, business_pk: int) -> list[tuple[User, Membership]]:
    rows = await session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.business_id == business_pk)
        .order_by(User.email)
    )
    return [(user, member) for user, member in rows]


async def live_session(
    session: AnySession, token_sha256: str, now: datetime
) -> tuple[DashboardSession, User] | None:
    row = (
        await session.execute(
            select(DashboardSession, User)
            .join(User, User.id == DashboardSession.user_id)
            .where(
                DashboardSession.token_sha256 == token_sha256,
                DashboardSession.revoked_at.is_(None),
                DashboardSession.expires_at > now,
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def revoke_session(session: AsyncSession, token_sha256: str, now: datetime) -> None:
    await session.execute(
        update(DashboardSession)
        .where(DashboardSession.token_sha256 == token_sha256)
        .values(revoked_at=now)
    )


async def revoke_user_sessions(session: AsyncSession, user_pk: int, now: datetime) -> int:
    result = await session.execute(
        update(DashboardSession)
        .where(DashboardSession.user_id == user_pk, DashboardSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_ended_sessions(session: AsyncSession, user_pk: int, now: datetime) -> None:
    """A user's expired or revoked sessions, dropped at their next sign-in (no table growth)."""
    await session.execute(
        delete(DashboardSession).where(
            DashboardSession.user_id == user_pk,
            or_(DashboardSession.expires_at <= now, DashboardSession.revoked_at.is_not(None)),
        )
    )
