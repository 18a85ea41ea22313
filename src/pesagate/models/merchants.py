"""Businesses (merchant accounts), their API keys and their wallets."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pesagate.models.base import Base, BigIntId, Timestamps, enum_column


class Tariff(StrEnum):
    """Who bears the fee (`mobile_tarrif`, two r's as in the reference API)."""

    BUSINESS_PAYS = "BUSINESS-PAYS"  # the fee is deducted from the merchant's settlement
    CUSTOMER_PAYS = "CUSTOMER-PAYS"  # the fee is added to the amount the customer is asked for


class Environment(StrEnum):
    SANDBOX = "sandbox"
    LIVE = "live"


class KeyKind(StrEnum):
    PUBLIC = "public"
    SECRET = "secret"


class WalletType(StrEnum):
    SETTLEMENT = "SETTLEMENT"  # made automatically, one per currency, never deletable
    WORKING = "WORKING"  # made by the merchant


# Relationships never load on access (`lazy="raise"`): under asyncio a lazy load is an error
# anyway, and every query says what it joins.
class Business(Timestamps, Base):
    __tablename__ = "businesses"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    business_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    short_name: Mapped[str] = mapped_column(String(13), doc="TransactionDesc on the prompt")
    # Payment settings (SPEC section 2).
    default_tariff: Mapped[Tariff | None] = mapped_column(enum_column(Tariff, 16), default=None)
    fee_rate_ppm: Mapped[int] = mapped_column(Integer, default=22_000, doc="0.022 = 22,000")
    fee_min_minor: Mapped[int] = mapped_column(BigInteger, default=0, doc="cents")
    min_amount_minor: Mapped[int] = mapped_column(BigInteger, default=1_000, doc="cents")
    max_amount_minor: Mapped[int] = mapped_column(BigInteger, default=15_000_000, doc="cents")
    clearing_delay_s: Mapped[int] = mapped_column(
        Integer, default=0, doc="collections stay CLEARING this long before they are AVAILABLE"
    )

    keys: Mapped[list["ApiKey"]] = relationship(back_populates="business", lazy="raise")
    wallets: Mapped[list["Wallet"]] = relationship(back_populates="business", lazy="raise")


class ApiKey(Timestamps, Base):
    """A public key is stored as is; a secret key only as its SHA-256 (it has 256 random bits,
    so a slow hash adds nothing) plus a short prefix to recognise it by."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_business_env", "business_id", "environment"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    environment: Mapped[Environment] = mapped_column(enum_column(Environment, 8))
    kind: Mapped[KeyKind] = mapped_column(enum_column(KeyKind, 8))
    lookup: Mapped[str] = mapped_column(String(128), unique=True, doc="public key, or sha256")
    display_prefix: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    business: Mapped[Business] = relationship(back_populates="keys", lazy="raise")


class Wallet(Timestamps, Base):
    __tablename__ = "wallets"
    __table_args__ = (UniqueConstraint("business_id", "currency", "label"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    wallet_id: Mapped[str] = mapped_column(String(7), unique=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(String(3))
    wallet_type: Mapped[WalletType] = mapped_column(enum_column(WalletType, 16))
    label: Mapped[str] = mapped_column(String(40))
    can_disburse: Mapped[bool] = mapped_column(default=False)

    business: Mapped[Business] = relationship(back_populates="wallets", lazy="raise")
