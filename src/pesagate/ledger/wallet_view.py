"""The read-only view of a wallet row (a module of its own: the repository builds it, and
the modules above the repository hand it on)."""

from dataclasses import dataclass

from pesagate.models import WalletType


@dataclass(frozen=True, slots=True)
class WalletView:
    """A wallet row as it was read, without its balances. Field names are the `wallets`
    columns'."""

    id: int
    wallet_id: str
    business_id: int
    currency: str
    wallet_type: WalletType
    label: str
    can_disburse: bool
