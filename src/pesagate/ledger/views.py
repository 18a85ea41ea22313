"""JSON shapes of SPEC section 4: Wallet, wallet transaction (a statement line), transfer."""

from collections.abc import Mapping
from typing import Any

from pesagate.kit.clock import rfc3339_ms
from pesagate.kit.money import format_minor
from pesagate.ledger import responses
from pesagate.ledger.postings import NewPosting
from pesagate.ledger.transfers import Transfer
from pesagate.models import LedgerAccount, LedgerPosting, Wallet


def wallet_json(wallet: Wallet, account: LedgerAccount) -> responses.Wallet:
    return {
        "wallet_id": wallet.wallet_id,
        "label": wallet.label,
        "currency": wallet.currency,
        "wallet_type": wallet.wallet_type,
        "can_disburse": wallet.can_disburse,
        "current_balance": format_minor(account.balance_minor),
        "available_balance": format_minor(account.spendable_minor),
        "created_at": rfc3339_ms(wallet.created_at),
        "updated_at": rfc3339_ms(max(wallet.updated_at, account.updated_at)),
    }


def transaction_json(
    posting: LedgerPosting | NewPosting, wallet: Wallet, invoice: Mapping[str, Any] | None
) -> responses.WalletTransaction:
    """`invoice`: the line's invoice as payments renders it, embedded by the wire contract."""
    return {
        "transaction_id": posting.transaction_id,
        "wallet_id": wallet.wallet_id,
        "invoice": invoice,
        "currency": wallet.currency,
        "value": format_minor(posting.amount_minor),
        "running_balance": format_minor(posting.running_balance_minor or 0),
        "narrative": posting.narrative,
        "trans_type": posting.trans_type,
        "status": posting.status,
        "created_at": rfc3339_ms(posting.created_at),
        "updated_at": rfc3339_ms(posting.updated_at),
    }


def transfer_json(moved: Transfer) -> responses.IntraTransferDone:
    """The intra_transfer answer: both sides of the transfer, its amount and narrative."""
    return {
        "from_data": {
            "wallet": wallet_json(moved.source, moved.source_account),
            "transaction": transaction_json(moved.source_line, moved.source, None),
        },
        "to_data": {
            "wallet": wallet_json(moved.destination, moved.destination_account),
            "transaction": transaction_json(moved.destination_line, moved.destination, None),
        },
        "amount": format_minor(moved.amount_minor),
        "narrative": moved.narrative,
    }


def transfer_event_json(moved: Transfer) -> dict[str, Any]:
    """The `wallet_transfer_event` resource: the answer without the narrative."""
    return {key: value for key, value in transfer_json(moved).items() if key != "narrative"}
