"""Merchant accounts: creation with their keys, payment settings, key rotation.

A new merchant also gets a settlement wallet: the ledger opens it, in the composition root's
`create_merchant` (`pesagate.services`)."""

import re
from collections import Counter
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pesagate.db import AnySession, Database
from pesagate.errors import NotFound
from pesagate.kit import ids
from pesagate.kit.text import check_plain_text
from pesagate.merchants import repository
from pesagate.merchants.fees import settings_error
from pesagate.merchants.keys import KeyPair, display_prefix, new_key_pair, secret_lookup
from pesagate.merchants.views import BusinessView
from pesagate.models import ApiKey, Business, Environment, KeyKind, Tariff

SHORT_NAME_MAX = 13  # Daraja's TransactionDesc limit


@dataclass(frozen=True, slots=True)
class NewBusiness:
    business: Business
    keys: KeyPair


def short_name_for(name: str) -> str:
    """What the customer's prompt shows: the name squeezed into 13 plain characters."""
    plain = re.sub(r"[^A-Za-z0-9 ]+", "", name).strip() or "Payment"
    return re.sub(r"\s+", " ", plain)[:SHORT_NAME_MAX].strip()


async def create_business(
    session: AsyncSession, name: str, environment: Environment, short_name: str | None = None
) -> NewBusiness:
    business = Business(
        business_id=ids.business_id(),
        name=check_plain_text(name.strip()),
        short_name=short_name_for(short_name or name),
    )
    session.add(business)
    await session.flush()
    return NewBusiness(business, await issue_keys(session, business, environment))


async def issue_keys(
    session: AsyncSession, business: Business, environment: Environment
) -> KeyPair:
    pair = new_key_pair(environment)
    session.add_all(
        [
            ApiKey(
                business_id=business.id,
                environment=environment,
                kind=KeyKind.PUBLIC,
                lookup=pair.public_key,
                display_prefix=display_prefix(pair.public_key),
            ),
            ApiKey(
                business_id=business.id,
                environment=environment,
                kind=KeyKind.SECRET,
                lookup=secret_lookup(pair.secret_key),
                display_prefix=display_prefix(pair.secret_key),
            ),
        ]
    )
    await session.flush()
    return pair


async def rotate_keys(
    session: AsyncSession, business: Business, environment: Environment
) -> KeyPair:
    """Revoke every live key of the environment and issue a new pair."""
    await repository.revoke_keys(session, business.id, environment)
    return await issue_keys(session, business, environment)


async def business(session: AsyncSession, business_pk: int) -> Business:
    """The caller's business (its pk comes from an authenticated key)."""
    found = await repository.business(session, business_pk)
    if found is None:
        raise NotFound("Business not found.")
    return found


async def business_view(connection: AsyncConnection, business_pk: int) -> BusinessView:
    """The caller's business as a read-only view (one Core statement)."""
    found = await repository.business_view(connection, business_pk)
    if found is None:
        raise NotFound("Business not found.")
    return found


async def find_business(session: AsyncSession, reference: str) -> Business:
    """A business by its business_id, or by its exact name."""
    found = await repository.business_by_reference(session, reference)
    if found is None:
        raise NotFound(f"No merchant {reference!r}.")
    return found


@dataclass
class PaymentSettingsUpdate:
    default_tariff: Tariff | None = None
    clear_default_tariff: bool = False
    fee_rate_ppm: int | None = None
    fee_min_minor: int | None = None
    min_amount_minor: int | None = None
    max_amount_minor: int | None = None
    clearing_delay_s: int | None = None


def apply_settings(business: Business, change: PaymentSettingsUpdate) -> None:
    if change.clear_default_tariff:
        business.default_tariff = None
    elif change.default_tariff is not None:
        business.default_tariff = change.default_tariff
    fields = ("fee_rate_ppm", "fee_min_minor", "min_amount_minor", "max_amount_minor")
    for field in (*fields, "clearing_delay_s"):
        value = getattr(change, field)
        if value is not None:
            setattr(business, field, value)
    if message := settings_error(business):
        raise ValueError(message)


async def every_business(session: AnySession) -> list[Business]:
    return await repository.all_businesses(session)


async def list_merchants(db: Database) -> list[Business]:
    async with db.read() as session:
        return await repository.all_businesses(session)


# How many times each business's terms were changed through this process, per database. A
# reader that keeps them (payments' push context) compares the count, so a change made here
# applies to the next push at once; one made elsewhere (another node, the CLI) within the
# reader's time to live.
_CHANGES: "WeakKeyDictionary[Database, Counter[int]]" = WeakKeyDictionary()


def changes_of(db: Database, business_pk: int) -> int:
    changes = _CHANGES.get(db)
    return changes[business_pk] if changes is not None else 0


def _changed(db: Database, business_pk: int) -> None:
    _CHANGES.setdefault(db, Counter())[business_pk] += 1


async def change_settings(db: Database, merchant: str, change: PaymentSettingsUpdate) -> Business:
    """`pesagate merchant settings`: NotFound, or ValueError for settings that cannot be kept."""
    async with db.transaction() as session:
        business = await find_business(session, merchant)
        apply_settings(business, change)
    _changed(db, business.id)
    return business


NAME_MAX = 120


async def change_profile(db: Database, business_pk: int, name: str, short_name: str) -> Business:
    """The business's name and what the customer's prompt shows (squeezed into 13 plain
    characters; empty: taken from the name). ValueError for a name that cannot be kept."""
    name = check_plain_text(name.strip())
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"A business name has 1 to {NAME_MAX} characters.")
    check_plain_text(short_name)
    async with db.transaction() as session:
        found = await business(session, business_pk)
        found.name, found.short_name = name, short_name_for(short_name.strip() or name)
    _changed(db, business_pk)
    return found


async def rotate_merchant_keys(db: Database, merchant: str, environment: Environment) -> KeyPair:
    async with db.transaction() as session:
        business = await find_business(session, merchant)
        return await rotate_keys(session, business, environment)


async def api_key(db: Database, lookup: str) -> ApiKey | None:
    """The key stored under this lookup (revoked or not): authentication decides."""
    async with db.read() as session:
        return await repository.key_by_lookup(session, lookup)


async def has_merchants(session: AsyncSession) -> bool:
    return await repository.any_business(session)


async def live_keys(db: Database, business_pk: int) -> list[ApiKey]:
    """The business's keys in use (the secret ones by their prefix only)."""
    async with db.read() as session:
        return await repository.live_keys(session, business_pk)


async def rotate_business_keys(db: Database, business_pk: int, environment: Environment) -> KeyPair:
    """The dashboard's rotation: every live key of the environment revoked, a new pair."""
    async with db.transaction() as session:
        return await rotate_keys(session, await business(session, business_pk), environment)


async def business_by_pk(db: Database, business_pk: int) -> Business:
    """The business, for display (the dashboard's Settings)."""
    async with db.read() as session:
        found = await repository.business(session, business_pk)
    if found is None:
        raise NotFound("Business not found.")
    return found
