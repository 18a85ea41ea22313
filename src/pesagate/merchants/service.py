"""Merchant accounts: creation (with keys and a settlement wallet), settings, key rotation."""

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.errors import NotFound
from pesagate.kit import ids
from pesagate.kit.clock import utc_now
from pesagate.ledger.service import open_wallet_account
from pesagate.merchants.keys import KeyPair, display_prefix, new_key_pair, secret_lookup
from pesagate.models import ApiKey, Business, Environment, KeyKind, Tariff, Wallet, WalletType

SHORT_NAME_MAX = 13  # Daraja's TransactionDesc limit


@dataclass(frozen=True, slots=True)
class NewMerchant:
    business: Business
    keys: KeyPair
    settlement_wallet: Wallet


def short_name_for(name: str) -> str:
    """What the customer's prompt shows: the name squeezed into 13 plain characters."""
    plain = re.sub(r"[^A-Za-z0-9 ]+", "", name).strip() or "Payment"
    return re.sub(r"\s+", " ", plain)[:SHORT_NAME_MAX].strip()


async def create_merchant(
    session: AsyncSession, name: str, environment: Environment, short_name: str | None = None
) -> NewMerchant:
    business = Business(
        business_id=ids.business_id(),
        name=name.strip(),
        short_name=short_name_for(short_name or name),
    )
    session.add(business)
    await session.flush()
    wallet = Wallet(
        wallet_id=ids.wallet_id(),
        business_id=business.id,
        currency="KES",
        wallet_type=WalletType.SETTLEMENT,
        label="SETTLEMENT",
    )
    session.add(wallet)
    await session.flush()
    await open_wallet_account(session, wallet)
    keys = await issue_keys(session, business, environment)
    return NewMerchant(business=business, keys=keys, settlement_wallet=wallet)


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
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.business_id == business.id,
            ApiKey.environment == environment,
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=utc_now())
    )
    return await issue_keys(session, business, environment)


async def find_business(session: AsyncSession, reference: str) -> Business:
    """A business by its business_id, or by its exact name."""
    found = await session.scalar(
        select(Business).where((Business.business_id == reference) | (Business.name == reference))
    )
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
    if business.min_amount_minor > business.max_amount_minor:
        raise ValueError("min amount must not exceed max amount")


DEMO_MERCHANT_NAME = "Demo Shop"


async def create_demo_merchant_if_empty(
    session: AsyncSession, environment: Environment
) -> NewMerchant | None:
    """On a fresh sandbox database, a merchant to try the gateway with at once."""
    if await session.scalar(select(Business.id).limit(1)) is not None:
        return None
    return await create_merchant(session, DEMO_MERCHANT_NAME, environment)
