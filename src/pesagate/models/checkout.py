"""Hosted checkout: checkout sessions (what a customer pays on the express page) and the
reusable payment links that open them. Owned by `pesagate.checkout`."""

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pesagate.models.base import Base, BigIntId, Timestamps, enum_column
from pesagate.models.merchants import Environment, Tariff


class PaymentLink(Timestamps, Base):
    """A reusable link: each visit opens a fresh checkout session."""

    __tablename__ = "payment_links"
    __table_args__ = (Index("ix_payment_links_business_created", "business_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    link_id: Mapped[str] = mapped_column(String(36), unique=True, doc="public id (a UUID)")
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    environment: Mapped[Environment] = mapped_column(enum_column(Environment, 8))
    title: Mapped[str] = mapped_column(String(140))
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0, doc="0: the payer chooses")
    usage_limit: Mapped[int] = mapped_column(Integer, default=0, doc="paid invoices; 0: no limit")
    redirect_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    mobile_tarrif: Mapped[Tariff | None] = mapped_column(enum_column(Tariff, 16), default=None)
    wallet_id: Mapped[str | None] = mapped_column(String(10), default=None, doc="public id")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class CheckoutSession(Timestamps, Base):
    """A hosted checkout: paid at most once, by one of the invoices pushed inside it."""

    __tablename__ = "checkout_sessions"
    __table_args__ = (Index("ix_checkout_sessions_business_api_ref", "business_id", "api_ref"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    checkout_id: Mapped[str] = mapped_column(String(36), unique=True, doc="public id (a UUID)")
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    environment: Mapped[Environment] = mapped_column(enum_column(Environment, 8))
    payment_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_links.id"), default=None, index=True
    )
    amount_minor: Mapped[int | None] = mapped_column(
        BigInteger, default=None, doc="None: the payer chooses (an open amount)"
    )
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    method: Mapped[str | None] = mapped_column(String(16), default=None)
    mobile_tarrif: Mapped[Tariff | None] = mapped_column(enum_column(Tariff, 16), default=None)
    wallet_id: Mapped[str | None] = mapped_column(String(10), default=None, doc="public id")
    api_ref: Mapped[str | None] = mapped_column(String(70), default=None)
    unique_api_ref: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    first_name: Mapped[str | None] = mapped_column(String(45), default=None)
    last_name: Mapped[str | None] = mapped_column(String(45), default=None)
    phone_number: Mapped[str | None] = mapped_column(String(12), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    redirect_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    callback_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    host: Mapped[str | None] = mapped_column(
        String(255), default=None, doc="the embedding page's origin: postMessage's target"
    )
    comment: Mapped[str | None] = mapped_column(String(500), default=None)
    version: Mapped[str | None] = mapped_column(String(16), default=None)
