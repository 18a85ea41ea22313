"""Wallets: the one place a wallet row and its ledger account are created."""

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pesagate.errors import ValidationFailed
from pesagate.kit import ids
from pesagate.ledger import repository
from pesagate.ledger.postings import open_wallet_account
from pesagate.ledger.wallet_view import WalletView
from pesagate.models import LedgerAccount, Wallet, WalletType

SETTLEMENT_LABEL = "SETTLEMENT"
SETTLEMENT_CURRENCY = "KES"


async def wallets_of(connection: AsyncConnection, business_pk: int) -> list[WalletView]:
    """The business's wallets (without balances): what a payment may be credited to."""
    return await repository.wallet_views(connection, business_pk)


async def open_wallet(
    session: AsyncSession,
    business_pk: int,
    currency: str,
    wallet_type: WalletType,
    label: str,
    can_disburse: bool = False,
) -> tuple[Wallet, LedgerAccount]:
    """A new wallet with its ledger account; labels are unique per business and currency."""
    if await repository.label_taken(session, business_pk, currency, label):
        raise ValidationFailed.field("label", "You already have a wallet with this label.")
    wallet = Wallet(
        wallet_id=ids.wallet_id(),
        business_id=business_pk,
        currency=currency,
        wallet_type=wallet_type,
        label=label,
        can_disburse=can_disburse,
    )
    session.add(wallet)
    await session.flush()
    return wallet, await open_wallet_account(session, wallet)


async def open_settlement_wallet(session: AsyncSession, business_pk: int) -> Wallet:
    """The wallet a new business's collections go to by default."""
    wallet, _ = await open_wallet(
        session, business_pk, SETTLEMENT_CURRENCY, WalletType.SETTLEMENT, SETTLEMENT_LABEL
    )
    return wallet
