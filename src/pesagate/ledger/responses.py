"""The wallet API's answers (SPEC section 4), as declared in the OpenAPI document."""

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import WithJsonSchema
from typing_extensions import TypedDict

from pesagate.kit.responses import Money, Paginated, Timestamp, closed
from pesagate.models import LineStatus, TransType, WalletType

# A statement line embeds the invoice as the payments domain renders it: documented by
# reference to its schema, since the ledger knows nothing of invoices.
EmbeddedInvoice = Annotated[
    Mapping[str, Any] | None,
    WithJsonSchema({"anyOf": [{"$ref": "#/components/schemas/Invoice"}, {"type": "null"}]}),
]


@closed
class Wallet(TypedDict):
    wallet_id: str
    label: str
    currency: str
    wallet_type: WalletType
    can_disburse: bool
    current_balance: Money
    available_balance: Money
    created_at: Timestamp
    updated_at: Timestamp


@closed
class WalletTransaction(TypedDict):
    """A statement line."""

    transaction_id: str
    wallet_id: str
    invoice: EmbeddedInvoice
    currency: str
    value: Money
    running_balance: Money
    narrative: str
    trans_type: TransType
    status: LineStatus
    created_at: Timestamp
    updated_at: Timestamp


@closed
class TransferSide(TypedDict):
    wallet: Wallet
    transaction: WalletTransaction


@closed
class IntraTransferDone(TypedDict):
    from_data: TransferSide
    to_data: TransferSide
    amount: Money
    narrative: str


WalletPage = Paginated[Wallet]
TransactionPage = Paginated[WalletTransaction]
