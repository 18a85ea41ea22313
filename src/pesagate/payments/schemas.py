"""Request validation and response shapes of the payments API (SPEC sections 2-4).

Requests are validated in one pass with the business as context, so that every bad field is
reported together, with messages in the reference API's (Django REST framework) style.
"""

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo

from pesagate.errors import NotFound
from pesagate.kit.money import AmountError, parse_amount_to_whole_units
from pesagate.kit.phones import to_safaricom_msisdn
from pesagate.kit.text import check_plain_text
from pesagate.ledger.wallet_view import WalletView
from pesagate.merchants.fees import amount_error, effective_tariff, quote
from pesagate.merchants.views import BusinessView
from pesagate.models import Tariff, WalletType

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
API_REF_DEFAULT = "MPesa Express"


@dataclass(frozen=True)
class PaymentContext:
    """What validation needs to know about the caller."""

    business: BusinessView
    wallets: dict[str, WalletView]  # the business's wallets by public wallet_id

    def settlement(self) -> WalletView:
        for wallet in self.wallets.values():
            if wallet.wallet_type == WalletType.SETTLEMENT and wallet.currency == "KES":
                return wallet
        raise NotFound("The business has no KES settlement wallet.")

    def wallet_to_credit(self, wallet_id: str | None) -> WalletView:
        """The wallet a request named (validated: one of these), else the KES settlement
        wallet, which every business must have."""
        settlement = self.settlement()
        return self.wallets[wallet_id] if wallet_id else settlement


def normalize_phone(raw: object) -> str:
    """`07…`, `01…`, `+254…`, `254…` -> `254XXXXXXXXX` (a Safaricom line), else an error."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ValueError("Not a valid string.")
    msisdn = to_safaricom_msisdn(str(raw).strip().replace(" ", ""))
    if msisdn is None:
        raise ValueError(
            "Enter a valid Safaricom phone number: 254XXXXXXXXX, 07XXXXXXXX or +254XXXXXXXXX."
        )
    return msisdn


def _text(max_length: int) -> Any:
    def check(raw: object) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise ValueError("Not a valid string.")
        if len(raw) > max_length:
            raise ValueError(f"Ensure this field has no more than {max_length} characters.")
        return check_plain_text(raw.strip()) or None

    return PlainValidator(check, json_schema_input_type=str | None)


def _tariff(raw: object) -> Tariff | None:
    if raw is None or raw == "":
        return None
    try:
        return Tariff(str(raw))
    except ValueError:
        raise ValueError(f'"{raw}" is not a valid choice.') from None


def _email(raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not _EMAIL.fullmatch(raw.strip()) or len(raw) > 254:
        raise ValueError("Enter a valid email address.")
    return check_plain_text(raw.strip())


def amount_in_limits(raw: object, info: ValidationInfo) -> int:
    """Whole shillings (rounded up), within the business's limits for the tariff in force
    (`mobile_tarrif` on payments, `tarrif` on estimates)."""
    try:
        units = parse_amount_to_whole_units(raw)
    except AmountError as exc:
        raise ValueError(str(exc)) from None
    context = _context(info)
    requested = info.data.get("mobile_tarrif") or info.data.get("tarrif")
    tariff = effective_tariff(requested, context.business)
    if message := amount_error(quote(units, tariff, context.business), context.business):
        raise ValueError(message)
    return units


def _wallet(raw: object, info: ValidationInfo) -> str | None:
    """The public id of one of the business's KES wallets."""
    if raw is None or raw == "":
        return None
    wallet = _context(info).wallets.get(raw) if isinstance(raw, str) else None
    if wallet is None or wallet.currency != "KES":
        raise ValueError("Unknown wallet: use the wallet_id of one of your KES wallets.")
    return wallet.wallet_id


def _context(info: ValidationInfo) -> PaymentContext:
    context = info.context
    assert isinstance(context, PaymentContext)
    return context


Phone = Annotated[str, PlainValidator(normalize_phone, json_schema_input_type=str)]
Amount = Annotated[int, PlainValidator(amount_in_limits, json_schema_input_type=float | str)]
TariffField = Annotated[
    Tariff | None, PlainValidator(_tariff, json_schema_input_type=Tariff | None)
]
WalletField = Annotated[str | None, PlainValidator(_wallet, json_schema_input_type=str | None)]
Email = Annotated[str | None, PlainValidator(_email, json_schema_input_type=str | None)]


class StkPushRequest(BaseModel):
    """`POST /payment/mpesa-stk-push/`. Field order matters: the tariff is known when the
    amount's limits are checked."""

    model_config = ConfigDict(extra="ignore")

    mobile_tarrif: TariffField = None
    phone_number: Phone
    amount: Amount
    api_ref: Annotated[str | None, _text(140)] = None
    wallet_id: WalletField = None
    email: Email = None
    first_name: Annotated[str | None, _text(100)] = None
    last_name: Annotated[str | None, _text(100)] = None


def _method(raw: object) -> str:
    if raw != "M-PESA":
        raise ValueError(f'"{raw}" is not a supported method here: only "M-PESA" is.')
    return "M-PESA"


def _currency(raw: object) -> str:
    if raw not in (None, "", "KES"):
        raise ValueError(f'"{raw}" is not a valid choice: M-PESA collects KES.')
    return "KES"


class CollectRequest(StkPushRequest):
    """`POST /payment/collection/`: the STK flow for client-side callers."""

    method: Annotated[str, PlainValidator(_method, json_schema_input_type=str)]
    currency: Annotated[str, PlainValidator(_currency, json_schema_input_type=str)] = "KES"
    public_key: str | None = None


def _estimate_method(raw: object) -> str:
    if raw not in (None, "", "M-PESA"):
        raise ValueError(f'"{raw}" is not a supported method here: only "M-PESA" is.')
    return "M-PESA"


class EstimateRequest(BaseModel):
    """`POST /payment/get_amount_estimate/`: the same limits as a payment. Field order
    matters, as for payments."""

    model_config = ConfigDict(extra="ignore")

    tarrif: TariffField = None
    amount: Amount
    method: Annotated[str, PlainValidator(_estimate_method, json_schema_input_type=str)] = "M-PESA"
    currency: Annotated[str, PlainValidator(_currency, json_schema_input_type=str)] = "KES"


def _invoice_id(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    return raw.strip()


class StatusRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    invoice_id: Annotated[str, PlainValidator(_invoice_id, json_schema_input_type=str)]
