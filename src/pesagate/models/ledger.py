"""The double-entry ledger: accounts, entries, postings.

Every entry's postings sum to zero. Postings are append-only: their accounts and amounts never
change and they are never deleted (a trigger enforces it on PostgreSQL); a correction is a new
entry. The one thing that changes on a posting is its clearing status, CLEARING -> AVAILABLE.

Amounts are signed integer cents from the account holder's point of view: a wallet's postings
are positive when money arrives. The M-Pesa clearing account goes negative by what customers
paid (money held at the shortcode, owed onwards), fee income positive by what was earned.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pesagate.kit.clock import utc_now
from pesagate.models.base import Base, BigIntId, enum_column


class AccountKind(StrEnum):
    WALLET = "WALLET"  # a merchant's wallet
    MPESA_CLEARING = "MPESA_CLEARING"  # money customers paid, held at the M-Pesa shortcode
    FEE_INCOME = "FEE_INCOME"  # the gateway's fees


class EntryKind(StrEnum):
    COLLECTION = "COLLECTION"  # a COMPLETE invoice: exactly one per invoice
    TRANSFER = "TRANSFER"  # an intra-business wallet transfer
    REFUND = "REFUND"  # a completed refund (an M-Pesa reversal): exactly one per refund
    ADJUSTMENT = "ADJUSTMENT"  # a correction


class TransType(StrEnum):
    """Wallet statement line types (SPEC section 4)."""

    SALE = "SALE"
    CHARGE = "CHARGE"
    PAYOUT = "PAYOUT"  # money leaving a wallet (the source side of a transfer)
    DEPOSIT = "DEPOSIT"  # money arriving other than by sale (the destination of a transfer)
    ADJUSTMENT = "ADJUSTMENT"
    REFUND = "REFUND"  # a payment given back to the customer (the collection undone)


class LineStatus(StrEnum):
    CLEARING = "CLEARING"  # counted in the balance, not yet available to move
    AVAILABLE = "AVAILABLE"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True, doc="wallet:<pk> or platform:…")
    kind: Mapped[AccountKind] = mapped_column(enum_column(AccountKind, 16))
    currency: Mapped[str] = mapped_column(String(3))
    wallet_id: Mapped[int | None] = mapped_column(
        ForeignKey("wallets.id", ondelete="RESTRICT"), unique=True, default=None
    )
    # Kept for wallets only, under the account's row lock, so statements can show running
    # balances and transfers can check availability without summing history. Platform
    # accounts are summed when needed: updating them on every payment would serialise all
    # payments on two rows. `pesagate ledger verify` recomputes both from postings.
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0, doc="cents, CLEARING too")
    available_minor: Mapped[int] = mapped_column(BigInteger, default=0, doc="cents, AVAILABLE only")
    # Held for refunds on their way out: counted in the balance until they complete, but no
    # longer available to move (`spendable_minor`). The sum of the account's HELD holds.
    held_minor: Mapped[int] = mapped_column(BigInteger, default=0, doc="cents, HELD holds")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    @property
    def spendable_minor(self) -> int:
        """What may leave the wallet now: available, less what is held."""
        return self.available_minor - self.held_minor


class HoldStatus(StrEnum):
    HELD = "HELD"  # the amount is not available to move
    RELEASED = "RELEASED"  # given back to the available balance (the refund failed)
    CAPTURED = "CAPTURED"  # turned into an entry (the refund completed)


class LedgerHold(Base):
    """An amount set aside on a wallet account for money about to leave it. Holds change only
    HELD -> RELEASED or HELD -> CAPTURED, under the account's row lock."""

    __tablename__ = "ledger_holds"
    __table_args__ = (Index("ix_ledger_holds_account", "account_id", "status"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    key: Mapped[str] = mapped_column(String(96), unique=True, doc="one hold per key (refund:<pk>)")
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[HoldStatus] = mapped_column(enum_column(HoldStatus, 12))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    key: Mapped[str] = mapped_column(String(96), unique=True, doc="idempotency: one entry per key")
    kind: Mapped[EntryKind] = mapped_column(enum_column(EntryKind, 16))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), default=None)
    narrative: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        Index("ix_ledger_postings_account", "account_id", "id"),
        Index("ix_ledger_postings_entry", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(12), unique=True, doc="public statement id")
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger, doc="signed cents")
    trans_type: Mapped[TransType] = mapped_column(enum_column(TransType, 16))
    status: Mapped[LineStatus] = mapped_column(enum_column(LineStatus, 12))
    running_balance_minor: Mapped[int | None] = mapped_column(
        BigInteger, default=None, doc="the wallet's balance after this line (wallets only)"
    )
    narrative: Mapped[str] = mapped_column(String(255))
    available_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
