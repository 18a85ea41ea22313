"""Request validation and response shapes of the payments API (SPEC sections 2-4).

Requests are validated in one pass with the business as context, so that every bad field is
reported together, with messages in the reference API's (Django REST framework) style.
"""

import re
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, ValidationInfo

from pesagate.errors import ValidationFailed
from pesagate.kit.money import AmountError, parse_amount_to_whole_units
from pesagate.models import Business, Tariff, Wallet
from pesagate.payments.fees import effective_tariff, limit_error, quote

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MSISDN = re.compile(r"^254[17]\d{8}$")
API_REF_DEFAULT = "MPesa Express"


@dataclass(frozen=True)
class PaymentContext:
    """What validation needs to know about the caller."""

    business: Business
    wallets: dict[str, Wallet]  # the business's wallets by public wallet_id


def normalize_phone(raw: object) -> str:
    """`07…`, `01…`, `+254…`, `254…` -> `254XXXXXXXXX` (a Safaricom line), else an error."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ValueError("Not a valid string.")
    text = str(raw).strip().replace(" ", "")
    if text.startswith("+"):
        text = text[1:]
    if len(text) == 10 and text.startswith(("07", "01")):
        text = "254" + text[1:]
    if not _MSISDN.fullmatch(text):
        raise ValueError(
            "Enter a valid Safaricom phone number: 254XXXXXXXXX, 07XXXXXXXX or +254XXXXXXXXX."
        )
    return text


def _text(max_length: int) -> Any:
    def check(raw: object) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise ValueError("Not a valid string.")
        if len(raw) > max_length:
            raise ValueError(f"Ensure this field has no more than {max_length} characters.")
        return raw.strip() or None

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
    return raw.strip()


def _amount(raw: object, info: ValidationInfo) -> int:
    """Whole shillings (rounded up), within the business's limits for the tariff in force."""
    try:
        units = parse_amount_to_whole_units(raw)
    except AmountError as exc:
        raise ValueError(str(exc)) from None
    context = _context(info)
    tariff = effective_tariff(info.data.get("mobile_tarrif"), context.business)
    if message := limit_error(quote(units, tariff, context.business).value_minor, context.business):
        raise ValueError(message)
    return units


def _wallet(raw: object, info: ValidationInfo) -> Wallet | None:
    if raw is None or raw == "":
        return None
    wallet = _context(info).wallets.get(str(raw)) if isinstance(raw, str) else None
    if wallet is None or wallet.currency != "KES":
        raise ValueError("Unknown wallet: use the wallet_id of one of your KES wallets.")
    return wallet


def _context(info: ValidationInfo) -> PaymentContext:
    context = info.context
    assert isinstance(context, PaymentContext)
    return context


Phone = Annotated[str, PlainValidator(normalize_phone, json_schema_input_type=str)]
Amount = Annotated[int, PlainValidator(_amount, json_schema_input_type=float | str)]
TariffField = Annotated[
    Tariff | None, PlainValidator(_tariff, json_schema_input_type=Tariff | None)
]
WalletField = Annotated[Any, PlainValidator(_wallet, json_schema_input_type=str | None)]
Email = Annotated[str | None, PlainValidator(_email, json_schema_input_type=str | None)]


class StkPushRequest(BaseModel):
    """`POST /payment/mpesa-stk-push/`. Field order matters: the tariff is known when the
    amount's limits are checked."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

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


def _estimate_amount(raw: object) -> int:
    try:
        return parse_amount_to_whole_units(raw)
    except AmountError as exc:
        raise ValueError(str(exc)) from None


class EstimateRequest(BaseModel):
    """`POST /payment/get_amount_estimate/`."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    tarrif: TariffField = None
    amount: Annotated[int, PlainValidator(_estimate_amount, json_schema_input_type=float | str)]
    method: Annotated[str, PlainValidator(_estimate_method, json_schema_input_type=str)] = "M-PESA"
    currency: Annotated[str, PlainValidator(_currency, json_schema_input_type=str)] = "KES"


def _invoice_id(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    return raw.strip()


class StatusRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    invoice_id: Annotated[str, PlainValidator(_invoice_id, json_schema_input_type=str)]


M = TypeVar("M", bound=BaseModel)


def validate_body(model: type[M], body: dict[str, Any], context: object = None) -> M:
    """Validate or raise `ValidationFailed` with every bad field."""
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        raise ValidationFailed(drf_errors(exc)) from None


def drf_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "non_field_errors"
        if error["type"] == "missing":
            message = "This field is required."
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        errors.setdefault(field, []).append(message)
    return errors
