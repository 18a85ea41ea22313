"""Request validation for wallet endpoints, DRF-style messages."""

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainValidator

from pesagate.kit.money import CENTS_PER_UNIT

_LABEL = re.compile(r"^[A-Za-z0-9 _-]{1,40}$")
CURRENCIES = ("KES",)


def _label(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    if not _LABEL.fullmatch(raw.strip()):
        raise ValueError("Use 1 to 40 letters, digits, spaces, '_' or '-'.")
    return raw.strip()


def _currency(raw: object) -> str:
    if raw not in CURRENCIES:
        raise ValueError(f'"{raw}" is not a valid choice: wallets hold {", ".join(CURRENCIES)}.')
    return str(raw)


def _wallet_type(raw: object) -> str:
    if raw not in (None, "WORKING"):
        raise ValueError(f'"{raw}" is not a valid choice: you can create WORKING wallets.')
    return "WORKING"


def _flag(raw: object) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise ValueError("Must be a valid boolean.")
    return raw


def amount_minor(raw: object) -> int:
    """A positive amount with at most two decimal places -> cents."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError("A valid number is required.")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError("A valid number is required.") from None
    if not value.is_finite():
        raise ValueError("A valid number is required.")
    if value <= 0:
        raise ValueError("Ensure this value is greater than 0.")
    cents = value * CENTS_PER_UNIT
    if cents != cents.to_integral_value():
        raise ValueError("Ensure that there are no more than 2 decimal places.")
    return int(cents)


def _narrative(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    if len(raw) > 255:
        raise ValueError("Ensure this field has no more than 255 characters.")
    return raw.strip()


def _wallet_ref(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    return raw.strip()


class WalletCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    currency: Annotated[str, PlainValidator(_currency, json_schema_input_type=str)]
    label: Annotated[str, PlainValidator(_label, json_schema_input_type=str)]
    wallet_type: Annotated[str, PlainValidator(_wallet_type, json_schema_input_type=str)] = (
        "WORKING"
    )
    can_disburse: Annotated[bool, PlainValidator(_flag, json_schema_input_type=bool)] = False


class IntraTransfer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    wallet_id: Annotated[str, PlainValidator(_wallet_ref, json_schema_input_type=str)]
    amount: Annotated[int, PlainValidator(amount_minor, json_schema_input_type=float | str)]
    narrative: Annotated[str, PlainValidator(_narrative, json_schema_input_type=str)]
