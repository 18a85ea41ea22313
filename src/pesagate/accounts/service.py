"""Dashboard accounts' use cases: create a user, sign in (throttled), find the signed-in
visitor from a cookie, sign out, revoke sessions, list a business's team, invite to it.

A session's cookie is 256 random bits; the database keeps only its SHA-256 (as API secret
keys), with its CSRF token, its expiry and its revocation, so sessions survive restarts and
every node sees a revocation at once."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pesagate.accounts import repository
from pesagate.accounts.passwords import hash_password, password_problem, verify
from pesagate.db import AnySession, AsyncSession, Database
from pesagate.errors import NotFound
from pesagate.kit.clock import utc_now
from pesagate.merchants.service import every_business, find_business
from pesagate.models import Business, DashboardSession, Invitation, Membership, Role, User

EMAIL_MAX = 254
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")


class AccountError(ValueError):
    """A user that cannot be created as asked (the message says why)."""


class SignInRefused(Exception):
    """Wrong email or password (one message for both: no account enumeration)."""


class SignInThrottled(Exception):
    def __init__(self, until: datetime) -> None:
        super().__init__("Too many failed sign-ins.")
        self.until = until


@dataclass(frozen=True, slots=True)
class Throttle:
    max_failures: int
    lockout_s: float


@dataclass(frozen=True, slots=True)
class Access:
    """One business a visitor may open, and as what."""

    business_pk: int
    business_id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Visitor:
    """The person behind a live session."""

    user_pk: int
    email: str
    is_operator: bool
    csrf_token: str
    access: tuple[Access, ...]

    def business(self, business_id: str) -> Access | None:
        return next((a for a in self.access if a.business_id == business_id), None)


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # the cookie's value, known only to the browser from now on
    expires_at: datetime


def normalized_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        raise AccountError(f"{email[:60]!r} is not an email address.")
    return email


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    db: Database,
    email: str,
    password: str,
    business_ref: str,
    role: Role,
    *,
    operator: bool = False,
) -> tuple[User, Business, bool]:
    """`pesagate user create`: a new user with a role in a business, or a new role for an
    existing user (whose password is then left as it was: the flag says whether the user is
    new)."""
    async with db.transaction() as session:
        try:
            business = await find_business(session, business_ref)
        except NotFound as missing:
            raise AccountError(missing.detail) from None
        user, created = await add_member(session, email, password, business, role, operator)
        return user, business, created


async def add_member(
    session: AsyncSession,
    email: str,
    password: str,
    business: Business,
    role: Role,
    operator: bool = False,
) -> tuple[User, bool]:
    """Inside the caller's transaction (the demo merchant's owner is made with it)."""
    email = normalized_email(email)
    user = await repository.user_by_email(session, email, lock=True)
    created = user is None
    if user is None:
        if problem := password_problem(password):
            raise AccountError(problem)
        user = User(email=email, password_hash=hash_password(password), failed_logins=0)
        session.add(user)
        await session.flush()
    user.is_operator = user.is_operator or operator
    await _join(session, user.id, business.id, role)
    return user, created


async def sign_in(
    db: Database, email: str, password: str, ttl_s: float, throttle: Throttle
) -> NewSession:
    """A new session for the right password; a failure counts, and enough of them in a row
    lock the account for a while (the right password is refused meanwhile too)."""
    try:
        email = normalized_email(email)
    except AccountError:
        verify(None, password)  # as long as a real attempt
        raise SignInRefused() from None
    now = utc_now()
    async with db.transaction() as session:
        user = await repository.user_by_email(session, email, lock=True)
        if user is not None and user.locked_until is not None and user.locked_until > now:
            raise SignInThrottled(user.locked_until)
        if not verify(user.password_hash if user else None, password) or user is None:
            if user is not None:
                _count_failure(user, now, throttle)
            failed = True
        else:
            failed = False
            user.failed_logins, user.locked_until = 0, None
            await repository.delete_ended_sessions(session, user.id, now)
            new = _open_session(session, user.id, now, ttl_s)
    if failed:  # raised after the commit, so that the failure is counted
        raise SignInRefused()
    return new


def _open_session(session: AsyncSession, user_pk: int, now: datetime, ttl_s: float) -> NewSession:
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=ttl_s)
    session.add(
        DashboardSession(
            token_sha256=token_digest(token),
            user_id=user_pk,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return NewSession(token, expires_at)


def _count_failure(user: User, now: datetime, throttle: Throttle) -> None:
    user.failed_logins += 1
    if user.failed_logins >= throttle.max_failures:
        user.locked_until = now + timedelta(seconds=throttle.lockout_s)
        user.failed_logins = 0


async def visitor(db: Database, token: str | None) -> Visitor | None:
    """Who holds this cookie, if its session is live (not expired, not revoked)."""
    if not token or len(token) > 128:
        return None
    async with db.read() as session:
        found = await repository.live_session(session, token_digest(token), utc_now())
        if found is None:
            return None
        dashboard_session, user = found
        if user.is_operator:
            access = await _every_business(session, user.id)
        else:
            access = [
                _access(b, m.role) for b, m in await repository.businesses_of(session, user.id)
            ]
    return Visitor(
        user.id, user.email, user.is_operator, dashboard_session.csrf_token, tuple(access)
    )


def _access(business: Business, role: Role) -> Access:
    return Access(business.id, business.business_id, business.name, role)


async def _every_business(session: AnySession, user_pk: int) -> list[Access]:
    """An operator sees every business: as its member where it is one, as a viewer elsewhere."""
    roles = {b.id: m.role for b, m in await repository.businesses_of(session, user_pk)}
    return [
        _access(business, roles.get(business.id, Role.VIEWER))
        for business in await every_business(session)
    ]


async def sign_out(db: Database, token: str | None) -> None:
    if not token or len(token) > 128:
        return
    async with db.transaction() as session:
        await repository.revoke_session(session, token_digest(token), utc_now())


async def revoke_sessions(db: Database, email: str) -> int:
    """`pesagate user revoke-sessions`: every live session of the user ends now."""
    email = normalized_email(email)
    async with db.transaction() as session:
        user = await repository.user_by_email(session, email)
        if user is None:
            raise AccountError(f"No user {email!r}.")
        return await repository.revoke_user_sessions(session, user.id, utc_now())


@dataclass(frozen=True, slots=True)
class Member:
    email: str
    role: Role
    since: datetime


async def team(db: Database, business_pk: int) -> list[Member]:
    async with db.read() as session:
        rows = await repository.members_of(session, business_pk)
    return [Member(user.email, member.role, member.created_at) for user, member in rows]


# ---------------------------------------------------------------- invitations


@dataclass(frozen=True, slots=True)
class Invited:
    """What Team -> Invite did: a member added at once (the email already has an account), or
    an invitation whose link (its token, shown once) the owner hands over."""

    email: str
    role: Role
    token: str | None  # None: an existing account, added as a member
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    id: int
    email: str
    role: Role
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OpenInvitation:
    """What the invited person sees on the link's page."""

    email: str
    role: Role
    business_name: str


async def invite(
    db: Database, business_pk: int, email: str, role: Role, invited_by: int, ttl_s: float
) -> Invited:
    """Someone with an account joins at once with the role (their password stays theirs);
    anyone else gets a link, valid `ttl_s`, on which they choose their password. A new
    invitation to the same email replaces the open one."""
    email = normalized_email(email)
    now = utc_now()
    async with db.transaction() as session:
        user = await repository.user_by_email(session, email, lock=True)
        if user is not None:
            await _join(session, user.id, business_pk, role)
            return Invited(email, role, None, None)
        await repository.revoke_invitations(session, business_pk, now, email=email)
        token = secrets.token_urlsafe(32)
        expires_at = now + timedelta(seconds=ttl_s)
        session.add(
            Invitation(
                token_sha256=token_digest(token),
                email=email,
                business_id=business_pk,
                role=role,
                invited_by=invited_by,
                created_at=now,
                expires_at=expires_at,
            )
        )
    return Invited(email, role, token, expires_at)


async def _join(session: AsyncSession, user_pk: int, business_pk: int, role: Role) -> None:
    member = await repository.membership(session, user_pk, business_pk)
    if member is None:
        session.add(Membership(user_id=user_pk, business_id=business_pk, role=role))
    else:
        member.role = role


async def open_invitation(db: Database, token: str) -> OpenInvitation | None:
    """The invitation behind a link, while it can still be accepted."""
    if not token or len(token) > 128:
        return None
    async with db.read() as session:
        found = await repository.live_invitation(session, token_digest(token), utc_now())
    if found is None:
        return None
    invitation, business = found
    return OpenInvitation(invitation.email, invitation.role, business.name)


async def accept_invitation(
    db: Database, token: str, password: str, ttl_s: float
) -> tuple[NewSession, str] | None:
    """The invited person's account, made with the password they chose, a member with the
    role, and signed in: the new session and the business's id. None if the link is no longer
    open (used, revoked, expired); AccountError for a password that is refused, or when the
    email got an account meanwhile (it then joins, with its own password). Used once: the
    invitation's row is locked until it is marked accepted."""
    if not token or len(token) > 128:
        return None
    if problem := password_problem(password):
        raise AccountError(problem)
    now = utc_now()
    async with db.transaction() as session:
        found = await repository.live_invitation(session, token_digest(token), now, lock=True)
        if found is None:
            return None
        invitation, business = found
        invitation.accepted_at = now
        user = await repository.user_by_email(session, invitation.email, lock=True)
        if user is None:
            user = User(
                email=invitation.email, password_hash=hash_password(password), failed_logins=0
            )
            session.add(user)
            await session.flush()
            await _join(session, user.id, business.id, invitation.role)
            return _open_session(session, user.id, now, ttl_s), business.business_id
        # The account was made meanwhile (`pesagate user create`): it joins, its password stays.
        await _join(session, user.id, business.id, invitation.role)
    raise AccountError(
        f"{invitation.email} already has an account and is now a member: sign in with its password."
    )


async def pending_invitations(db: Database, business_pk: int) -> list[PendingInvitation]:
    async with db.read() as session:
        rows = await repository.open_invitations(session, business_pk, utc_now())
    return [PendingInvitation(i.id, i.email, i.role, i.expires_at) for i in rows]


async def revoke_invitation(db: Database, business_pk: int, invitation_pk: int) -> bool:
    async with db.transaction() as session:
        ended = await repository.revoke_invitations(
            session, business_pk, utc_now(), invitation_pk=invitation_pk
        )
    return ended > 0
