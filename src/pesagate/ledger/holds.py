"""Holds: money set aside on a wallet for a refund on its way out, then released (the refund
failed) or captured as the REFUND entry (it completed). Every function takes the caller's
session: a hold changes in the same transaction as the refund it serves.

A hold lowers what may leave the wallet (`spendable_minor`: available less held) at once, and
its balance only when captured (a released hold is held again only when the money left after
all: `hold_again`). The hold and the entry are keyed by the refund, so each happens
at most once; the wallet account's row lock orders them with every other posting."""

from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.errors import ValidationFailed
from pesagate.kit.money import format_minor
from pesagate.ledger import repository
from pesagate.ledger.postings import LedgerError, Line, platform_account, post_entry, wallet_account
from pesagate.models import AccountKind, EntryKind, HoldStatus, LedgerHold, LineStatus, TransType


async def place_hold(
    session: AsyncSession, wallet_pk: int, key: str, amount_minor: int, field: str = "amount"
) -> LedgerHold:
    """Hold `amount_minor` on the wallet, or refuse (400 on `field`) when what may leave it is
    short."""
    account = await wallet_account(session, wallet_pk, lock=True)
    if account.spendable_minor < amount_minor:
        raise ValidationFailed.field(
            field,
            f"Insufficient available balance in the wallet: {format_minor(account.spendable_minor)}"
            f" {account.currency} available, {format_minor(amount_minor)} needed.",
        )
    hold = LedgerHold(
        key=key, account_id=account.id, amount_minor=amount_minor, status=HoldStatus.HELD
    )
    session.add(hold)
    account.held_minor += amount_minor
    await session.flush()
    return hold


async def release_hold(session: AsyncSession, wallet_pk: int, key: str) -> bool:
    """Give a held amount back to the available balance; False if it was not HELD."""
    account = await wallet_account(session, wallet_pk, lock=True)
    hold = await repository.hold_by_key(session, key, lock=True)
    if hold is None or hold.status != HoldStatus.HELD:
        return False
    hold.status = HoldStatus.RELEASED
    account.held_minor -= hold.amount_minor
    return True


async def hold_again(session: AsyncSession, wallet_pk: int, key: str) -> bool:
    """A RELEASED hold is HELD again, whatever the balance: the money left after all (M-Pesa
    carried a reversal out after its refund was given up). False if it was not RELEASED."""
    account = await wallet_account(session, wallet_pk, lock=True)
    hold = await repository.hold_by_key(session, key, lock=True)
    if hold is None or hold.status != HoldStatus.RELEASED:
        return False
    hold.status = HoldStatus.HELD
    account.held_minor += hold.amount_minor
    return True


async def capture_refund(
    session: AsyncSession,
    *,
    wallet_pk: int,
    hold_key: str,
    entry_key: str,
    invoice_pk: int,
    amount_minor: int,
    charges_minor: int,
    currency: str,
    reference: str,
) -> bool:
    """Turn the hold into the REFUND entry: the collection undone. The customer gets
    `amount_minor` back from the M-Pesa clearing account; the wallet gives it, less the
    gateway's fee, which fee income returns (README, "Refunds"). False if already captured."""
    account = await wallet_account(session, wallet_pk, lock=True)
    hold = await repository.hold_by_key(session, hold_key, lock=True)
    if hold is None or hold.status == HoldStatus.CAPTURED:
        return False
    if hold.amount_minor != amount_minor - charges_minor:
        raise LedgerError(f"hold {hold_key} does not match its refund")
    mpesa = await platform_account(session, AccountKind.MPESA_CLEARING, currency)
    fees = await platform_account(session, AccountKind.FEE_INCOME, currency)
    available = LineStatus.AVAILABLE
    lines = [
        Line(account, -amount_minor, TransType.REFUND, available, f"Refund {reference}"),
        Line(account, charges_minor, TransType.CHARGE, available, f"Charges returned {reference}"),
        Line(fees, -charges_minor, TransType.CHARGE, available, reference),
        Line(mpesa, amount_minor, TransType.REFUND, available, reference),
    ]
    posted = await post_entry(
        session,
        key=entry_key,
        kind=EntryKind.REFUND,
        narrative=f"M-Pesa reversal {reference}",
        lines=lines,
        invoice_pk=invoice_pk,
    )
    if posted is None:
        return False
    if hold.status == HoldStatus.HELD:
        account.held_minor -= hold.amount_minor
    hold.status = HoldStatus.CAPTURED
    hold.entry_id = posted.entry_id
    return True
