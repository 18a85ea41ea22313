"""The merchants' tables: businesses and their API keys. Every statement on them is here;
callers pass their session (the transaction is theirs)."""

from dataclasses import fields

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pesagate.db import AnySession, select_rows
from pesagate.kit.clock import utc_now
from pesagate.merchants.views import BusinessView
from pesagate.models import ApiKey, Business, Environment


async def business(session: AsyncSession | AnySession, business_pk: int) -> Business | None:
    return await session.get(Business, business_pk)


_BUSINESS_VIEW = select(
    *(Business.__table__.c[field.name] for field in fields(BusinessView))
).where(Business.id == bindparam("business_pk"))


async def business_view(connection: AsyncConnection, business_pk: int) -> BusinessView | None:
    """The business row without an ORM instance (built once: every push reads it)."""
    rows = await select_rows(connection, _BUSINESS_VIEW, {"business_pk": business_pk})
    return BusinessView(*rows[0]) if rows else None


async def business_by_reference(session: AsyncSession, reference: str) -> Business | None:
    """A business by its business_id, or by its exact name."""
    return await session.scalar(
        select(Business).where((Business.business_id == reference) | (Business.name == reference))
    )


async def all_businesses(session: AnySession) -> list[Business]:
    return list(await session.scalars(select(Business).order_by(Business.id)))


async def any_business(session: AsyncSession) -> bool:
    return await session.scalar(select(Business.id).limit(1)) is not None


async def revoke_keys(session: AsyncSession, business_pk: int, environment: Environment) -> None:
    """Every live key of the business in this environment."""
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.business_id == business_pk,
            ApiKey.environment == environment,
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=utc_now())
    )


async def key_by_lookup(session: AsyncSession, lookup: str) -> ApiKey | None:
    return await session.scalar(select(ApiKey).where(ApiKey.lookup == lookup))


async def live_keys(session: AnySession, business_pk: int) -> list[ApiKey]:
    return list(
        await session.scalars(
            select(ApiKey)
            .where(ApiKey.business_id == business_pk, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.environment, ApiKey.kind)
        )
    )
