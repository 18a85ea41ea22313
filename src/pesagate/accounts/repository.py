"""The accounts' tables: users, memberships, dashboard sessions, invitations. Every statement
on them is here; callers pass their session (the transaction is theirs)."""

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.db import AnySession
from pesagate.models import Business, DashboardSession, Invitation, Membership, User


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


async def live_invitation(
    session: AnySession, token_sha256: str, now: datetime, *, lock: bool = False
) -> tuple[Invitation, Business] | None:
    """The invitation behind a link, if it is still open (not used, revoked or expired)."""
    statement = (
        select(Invitation, Business)
        .join(Business, Business.id == Invitation.business_id)
        .where(
            Invitation.token_sha256 == token_sha256,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
    )
    if lock:
        statement = statement.with_for_update(of=Invitation)
    row = (await session.execute(statement)).first()
    return None if row is None else (row[0], row[1])


async def open_invitations(
    session: AnySession, business_pk: int, now: datetime
) -> list[Invitation]:
    return list(
        await session.scalars(
            select(Invitation)
            .where(
                Invitation.business_id == business_pk,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.created_at, Invitation.id)
        )
    )


async def revoke_invitations(
    session: AsyncSession,
    business_pk: int,
    now: datetime,
    *,
    email: str | None = None,
    invitation_pk: int | None = None,
) -> int:
    """Ends a business's open invitations: to one email, or one by its id."""
    statement = update(Invitation).where(
        Invitation.business_id == business_pk,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
    )
    if email is not None:
        statement = statement.where(Invitation.email == email)
    if invitation_pk is not None:
        statement = statement.where(Invitation.id == invitation_pk)
    result = await session.execute(statement.values(revoked_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]
