"""Every SQL statement on checkout's tables (checkout_sessions, payment_links).

Functions take the session of the unit of work they are part of; they never commit.
"""

from sqlalchemy import func, select

from pesagate.db import AnySession, AsyncReadSession, AsyncSession
from pesagate.models import CheckoutSession, Environment, PaymentLink

# ---------------------------------------------------------------- checkout sessions


async def add_session(session: AsyncSession, checkout: CheckoutSession) -> CheckoutSession:
    session.add(checkout)
    await session.flush()
    return checkout


async def session_by_id(
    session: AnySession, checkout_id: str, environment: Environment
) -> CheckoutSession | None:
    return await session.scalar(
        select(CheckoutSession).where(
            CheckoutSession.checkout_id == checkout_id,
            CheckoutSession.environment == environment,
        )
    )


async def session_by_pk(session: AnySession, checkout_pk: int) -> CheckoutSession | None:
    return await session.get(CheckoutSession, checkout_pk)


async def lock_session(session: AsyncSession, checkout_pk: int) -> CheckoutSession:
    """The session row, locked until the transaction ends: pushes inside one session are
    serialised (on SQLite the write lock of `Database.transaction` serialises instead)."""
    checkout = await session.scalar(
        select(CheckoutSession)
        .where(CheckoutSession.id == checkout_pk)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert checkout is not None
    return checkout


async def session_with_api_ref(
    session: AsyncSession, business_pk: int, api_ref: str
) -> CheckoutSession | None:
    """The business's newest session with this api_ref (`unique_api_ref`)."""
    return await session.scalar(
        select(CheckoutSession)
        .where(CheckoutSession.business_id == business_pk, CheckoutSession.api_ref == api_ref)
        .order_by(CheckoutSession.id.desc())
        .limit(1)
    )


# ---------------------------------------------------------------- payment links


async def add_link(session: AsyncSession, link: PaymentLink) -> PaymentLink:
    session.add(link)
    await session.flush()
    return link


async def link_by_id(
    session: AnySession, business_pk: int | None, link_id: str, environment: Environment
) -> PaymentLink | None:
    """A link by its public id; of one business, unless `business_pk` is None (its page)."""
    query = select(PaymentLink).where(
        PaymentLink.link_id == link_id, PaymentLink.environment == environment
    )
    if business_pk is not None:
        query = query.where(PaymentLink.business_id == business_pk)
    return await session.scalar(query)


async def link_by_pk(session: AnySession, link_pk: int) -> PaymentLink | None:
    return await session.get(PaymentLink, link_pk)


async def lock_link(session: AsyncSession, link_pk: int) -> PaymentLink:
    """The link row, locked: pushes through one link are serialised, so its usage limit holds
    under concurrent payers."""
    link = await session.scalar(
        select(PaymentLink)
        .where(PaymentLink.id == link_pk)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert link is not None
    return link


async def links_page(
    session: AsyncReadSession, business_pk: int, environment: Environment, offset: int, limit: int
) -> tuple[int, list[PaymentLink]]:
    """How many links the business has, and one page of them, newest first."""
    where = (PaymentLink.business_id == business_pk, PaymentLink.environment == environment)
    count = await session.scalar(select(func.count()).select_from(PaymentLink).where(*where))
    page = await session.scalars(
        select(PaymentLink)
        .where(*where)
        .order_by(PaymentLink.created_at.desc(), PaymentLink.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return count or 0, list(page.all())
