"""Validation of STK push and query bodies, in Daraja's order and with Daraja's messages.

Each check raises `DarajaError`; the first failing field is the one reported, as on the real
service. Checks that need the simulator's state (known shortcode, password, open prompt) live in
the engine, after these.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pesagate.kit.phones import is_safaricom_msisdn
from pesagate.mpesa.protocol import AMOUNT_MAX_KES, TIMESTAMP_FORMAT, ErrorCode, TransactionType

# ASCII digits only, as on the real service: int() and str.isdigit() take any script's digits.
_DIGITS = re.compile(r"[0-9]{5,7}", re.ASCII)
_WHOLE_AMOUNT = re.compile(r"([0-9]{1,9})(?:\.0*)?", re.ASCII)
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13


class DarajaError(Exception):
    """An answer in Daraja's error envelope `{requestId, errorCode, errorMessage}`."""

    def __init__(self, http_status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message


class BadCredentials(DarajaError):
    """Wrong consumer key or secret. Daraja has answered this with an envelope and with an empty
    body; `bad_credentials_shape` picks one."""

    def __init__(self) -> None:
        super().__init__(400, ErrorCode.INVALID_AUTH_TYPE, "Invalid Authentication passed")


def invalid(field: str) -> DarajaError:
    return DarajaError(400, ErrorCode.INVALID_FIELD, f"Bad Request - Invalid {field}")


@dataclass(frozen=True, slots=True)
class PushRequest:
    shortcode: str
    password: str
    timestamp: str
    transaction_type: TransactionType
    amount: int
    party_a: str
    party_b: str
    phone_number: str
    callback_url: str
    account_reference: str
    transaction_desc: str


@dataclass(frozen=True, slots=True)
class QueryRequest:
    shortcode: str
    password: str
    timestamp: str
    checkout_request_id: str


def parse_push(body: dict[str, Any]) -> PushRequest:
    return PushRequest(
        shortcode=_shortcode(body.get("BusinessShortCode"), "BusinessShortCode"),
        password=_password(body.get("Password")),
        timestamp=_timestamp(body.get("Timestamp")),
        transaction_type=_transaction_type(body.get("TransactionType")),
        amount=_amount(body.get("Amount")),
        party_a=_msisdn(body.get("PartyA"), "PartyA"),
        party_b=_shortcode(body.get("PartyB"), "PartyB"),
        phone_number=_msisdn(body.get("PhoneNumber"), "PhoneNumber"),
        callback_url=_callback_url(body.get("CallBackURL")),
        account_reference=_bounded_text(
            body.get("AccountReference"), ACCOUNT_REFERENCE_MAX, "AccountReference"
        ),
        transaction_desc=_bounded_text(
            body.get("TransactionDesc"), TRANSACTION_DESC_MAX, "Remarks"
        ),
    )


def parse_query(body: dict[str, Any]) -> QueryRequest:
    checkout_id = body.get("CheckoutRequestID")
    if not isinstance(checkout_id, str) or not checkout_id:
        raise invalid("CheckoutRequestID")
    return QueryRequest(
        shortcode=_shortcode(body.get("BusinessShortCode"), "BusinessShortCode"),
        password=_password(body.get("Password")),
        timestamp=_timestamp(body.get("Timestamp")),
        checkout_request_id=checkout_id,
    )


def _as_digit_string(value: object) -> str | None:
    """Daraja takes numeric fields as JSON numbers or strings; booleans and floats are neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return value.strip()
    return None


def _shortcode(value: object, field: str) -> str:
    digits = _as_digit_string(value)
    if digits is None or not _DIGITS.fullmatch(digits):
        raise invalid(field)
    return digits


def _password(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("Password")
    return value


def _timestamp(value: object) -> str:
    text = _as_digit_string(value)
    if text is None or len(text) != 14:
        raise invalid("Timestamp")
    try:
        datetime.strptime(text, TIMESTAMP_FORMAT)
    except ValueError:
        raise invalid("Timestamp") from None
    return text


def _transaction_type(value: object) -> TransactionType:
    if not isinstance(value, str):
        raise invalid("TransactionType")
    try:
        return TransactionType(value)
    except ValueError:
        raise invalid("TransactionType") from None


def _amount(value: object) -> int:
    """Whole shillings 1..250,000, as a number or a numeric string; decimals fail."""
    if isinstance(value, bool):
        raise invalid("Amount")
    if isinstance(value, str):
        whole = _WHOLE_AMOUNT.fullmatch(value.strip())
        if whole is None:
            raise invalid("Amount")
        value = int(whole.group(1))
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid("Amount")
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= AMOUNT_MAX_KES:
        raise invalid("Amount")
    return value


def _msisdn(value: object, field: str) -> str:
    digits = _as_digit_string(value)
    if digits is None or not is_safaricom_msisdn(digits):
        raise invalid(field)
    return digits


def _callback_url(value: object) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise invalid("CallBackURL")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise invalid("CallBackURL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise invalid("CallBackURL")
    return value


def _bounded_text(value: object, max_length: int, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise invalid(field)
    return value
