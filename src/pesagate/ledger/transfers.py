"""Intra-business wallet transfers: atomic, never below zero available balance."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pesagate.errors import ValidationFailed
from pesagate.kit.ids import session_id
from pesagate.kit.money import format_minor
from pesagate.ledger.postings import Line, NewPosting, post_entry, wallet_account
from pesagate.models import (
    EntryKind,
    LedgerAccount,
    LineStatus,
    TransType,
    Wallet,
)


@dataclass(frozen=True, slots=True)
class Transfer:
    source: Wallet
    destination: Wallet
    amount_minor: int
    narrative: str
    source_line: NewPosting
    destination_line: NewPosting
    source_account: LedgerAccount
    destination_account: LedgerAccount


async def transfer(
    session: AsyncSession, source: Wallet, destination: Wallet, amount_minor: int, narrative: str
) -> Transfer:
    if source.id == destination.id:
        raise ValidationFailed.field("wallet_id", "Choose a different wallet to transfer to.")
    if source.currency != destination.currency:
        raise ValidationFailed.field("wallet_id", "Both wallets must hold the same currency.")
    # Lock in a fixed order, so two opposite transfers cannot deadlock.
    first, second = sorted((source.id, destination.id))
    locked = {pk: await wallet_account(session, pk, lock=True) for pk in (first, second)}
    source_account, destination_account = locked[source.id], locked[destination.id]
    if source_account.spendable_minor < amount_minor:
        available = format_minor(source_account.spendable_minor)
        raise ValidationFailed.field(
            "amount", f"Insufficient available balance: {available} {source.currency}."
        )
    posted = await post_entry(
        session,
        key=f"transfer:{session_id()}",
        kind=EntryKind.TRANSFER,
        narrative=narrative,
        lines=[
            Line(source_account, -amount_minor, TransType.PAYOUT, LineStatus.AVAILABLE, narrative),
            Line(
                destination_account,
                amount_minor,
                TransType.DEPOSIT,
                LineStatus.AVAILABLE,
                narrative,
            ),
        ],
    )
    assert posted is not None  # a fresh key
    source_line, destination_line = posted.lines
    return Transfer(
        source,
        destination,
        amount_minor,
        narrative,
        source_line,
        destination_line,
        source_account,
        destination_account,
    )
