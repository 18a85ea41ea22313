"""JSON shapes of SPEC section 4: Wallet and wallet transaction (a statement line)."""

from typing import Any

from pesagate.kit.clock import rfc3339_ms
from pesagate.kit.money import format_minor
from pesagate.models import Invoice, LedgerAccount, LedgerPosting, Wallet
from pesagate.payments.views import invoice_json


def wallet_json(wallet: Wallet, account: LedgerAccount) -> dict[str, Any]:
    return {
        "wallet_id": wallet.wallet_id,
        "label": wallet.label,
        "currency": wallet.currency,
        "wallet_type": wallet.wallet_type,
        "can_disburse": wallet.can_disburse,
        "current_balance": format_minor(account.balance_minor),
        "available_balance": format_minor(account.available_minor),
        "created_at": rfc3339_ms(wallet.created_at),
        "updated_at": rfc3339_ms(max(wallet.updated_at, account.updated_at)),
    }


def transaction_json(
    posting: LedgerPosting, wallet: Wallet, invoice: Invoice | None
) -> dict[str, Any]:
    return {
        "transaction_id": posting.transaction_id,
        "wallet_id": wallet.wallet_id,
        "invoice": invoice_json(invoice) if invoice is not None else None,
        "currency": wallet.currency,
        "value": format_minor(posting.amount_minor),
        "running_balance": format_minor(posting.running_balance_minor or 0),
        "narrative": posting.narrative,
        "trans_type": posting.trans_type,
        "status": posting.status,
        "created_at": rfc3339_ms(posting.created_at),
        "updated_at": rfc3339_ms(posting.updated_at),
    }
