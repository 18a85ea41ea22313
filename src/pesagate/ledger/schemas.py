"""Request validation for wallet endpoints, DRF-style messages."""

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainValidator

from pesagate.kit.money import AmountError, parse_amount_to_minor
from pesagate.kit.text import check_plain_text

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
    try:
        return parse_amount_to_minor(raw)
    except AmountError as exc:
        raise ValueError(str(exc)) from None


def _narrative(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    if len(raw) > 255:
        raise ValueError("Ensure this field has no more than 255 characters.")
    return check_plain_text(raw.strip())


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
