"""Reversal and Transaction Status: request bodies, and tolerant parsing of their results.

Both APIs answer in two steps: a synchronous acknowledgement (ids only), then a Result POSTed
to the ResultURL, or a timeout notice to the QueueTimeOutURL. The Result's wire shape varies
(next-capabilities.md sections 2.2 and 3), so parsing tolerates every variant seen:
`ResultCode` as a number or a string ("R000002"), `ResultParameter` as a list or one object,
`Value` as a number, a string or absent, and repeated keys (`DebitPartyName` twice).
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from pesagate.mpesa.protocol import (
    RECEIVER_IDENTIFIER_FIELD,
    RECEIVER_IDENTIFIER_ORGANISATION,
    REMARKS_MAX,
    REMARKS_MIN,
    REVERSAL_COMMAND,
    STATUS_COMMAND,
    STATUS_IDENTIFIER_SHORTCODE,
)

OCCASION_MAX = 100
REMARKS_PLACEHOLDER = "Refund"
MAX_RESULT_PARAMETERS = 64  # more than any real Result has; bounds the work on a hostile body


def reversal_body(
    *,
    initiator: str,
    credential: str,
    receipt: str,
    amount: int,
    receiver_party: str,
    result_url: str,
    timeout_url: str,
    remarks: str,
    occasion: str | None = None,
) -> dict[str, Any]:
    """`amount`: whole shillings, the payment's full amount (M-Pesa reverses whole payments)."""
    body: dict[str, Any] = {
        "Initiator": initiator,
        "SecurityCredential": credential,
        "CommandID": REVERSAL_COMMAND,
        "TransactionID": receipt,
        "Amount": int(amount),
        "ReceiverParty": receiver_party,
        RECEIVER_IDENTIFIER_FIELD: RECEIVER_IDENTIFIER_ORGANISATION,
        "ResultURL": result_url,
        "QueueTimeOutURL": timeout_url,
        "Remarks": bounded_remarks(remarks),
    }
    if occasion:
        body["Occasion"] = occasion[:OCCASION_MAX]
    return body


def status_body(
    *,
    initiator: str,
    credential: str,
    receipt: str,
    party_a: str,
    result_url: str,
    timeout_url: str,
    remarks: str,
    occasion: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Initiator": initiator,
        "SecurityCredential": credential,
        "CommandID": STATUS_COMMAND,
        "TransactionID": receipt,
        "PartyA": party_a,
        "IdentifierType": STATUS_IDENTIFIER_SHORTCODE,
        "ResultURL": result_url,
        "QueueTimeOutURL": timeout_url,
        "Remarks": bounded_remarks(remarks),
    }
    if occasion:
        body["Occasion"] = occasion[:OCCASION_MAX]
    return body


def bounded_remarks(text: str) -> str:
    """Remarks are required, 2-100 characters."""
    remarks = " ".join(text.split())[:REMARKS_MAX].strip()
    return remarks if len(remarks) >= REMARKS_MIN else REMARKS_PLACEHOLDER


@dataclass(frozen=True, slots=True)
class InitiatorResult:
    """A Result (or a QueueTimeOut notice) of Reversal or Transaction Status."""

    result_code: str  # always text: "0", "2001", "R000002"
    result_desc: str
    result_type: str | None
    originator_conversation_id: str | None
    conversation_id: str | None
    transaction_id: str | None  # a reversal's own receipt (a dummy for Transaction Status)
    parameters: tuple[tuple[str, Any], ...]  # in order, repeated keys kept

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"

    def param(self, key: str) -> Any:
        """The first value of `key`, or None (absent, or without a Value)."""
        for name, value in self.parameters:
            if name == key:
                return value
        return None

    def params(self, key: str) -> list[Any]:
        return [value for name, value in self.parameters if name == key]

    def text(self, key: str) -> str | None:
        value = self.param(key)
        return code_text(value)


def parse_result(content: bytes | str | Any) -> InitiatorResult | None:
    """The Result inside a body (`{"Result": {...}}`), or None when the body is not one."""
    body = content
    if isinstance(content, bytes | str):
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            return None
    result = body.get("Result") if isinstance(body, dict) else None
    if not isinstance(result, dict):
        return None
    code = code_text(result.get("ResultCode"))
    if code is None:
        return None
    description = result.get("ResultDesc")
    return InitiatorResult(
        result_code=code,
        result_desc=description if isinstance(description, str) else "",
        result_type=code_text(result.get("ResultType")),
        originator_conversation_id=_text(result.get("OriginatorConversationID")),
        conversation_id=_text(result.get("ConversationID")),
        transaction_id=_text(result.get("TransactionID")),
        parameters=_parameters(result.get("ResultParameters")),
    )


def _parameters(container: Any) -> tuple[tuple[str, Any], ...]:
    items = container.get("ResultParameter") if isinstance(container, dict) else None
    if isinstance(items, dict):
        items = [items]  # one parameter arrives as an object, not a list
    if not isinstance(items, list):
        return ()
    found: list[tuple[str, Any]] = []
    for item in items[:MAX_RESULT_PARAMETERS]:
        if isinstance(item, dict) and isinstance(item.get("Key"), str):
            found.append((item["Key"], item.get("Value")))
    return tuple(found)


def code_text(value: Any) -> str | None:
    """A code or value that arrives as a string or a number, as text (0 -> "0")."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _text(value: Any) -> str | None:
    return value.strip()[:64] if isinstance(value, str) and value.strip() else None


_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")


def amount_minor(value: Any) -> int | None:
    """An amount parameter (1.00, "300", 300) in cents; None when it is not a plain amount."""
    if isinstance(value, bool) or value is None:
        return None
    text = format(value, "f") if isinstance(value, float) else str(value).strip()
    if isinstance(value, float):
        text = text.rstrip("0").rstrip(".") if "." in text else text
    if not _AMOUNT.fullmatch(text):
        return None
    try:
        return int(Decimal(text) * 100)
    except InvalidOperation:
        return None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What a Transaction Status Result says about one transaction."""

    status: str | None  # `TransactionStatus`: "Completed", "Reversed", ...
    receipt: str | None  # `ReceiptNo`
    amount_minor: int | None


def status_report(result: InitiatorResult) -> StatusReport:
    return StatusReport(
        status=result.text("TransactionStatus"),
        receipt=result.text("ReceiptNo"),
        amount_minor=amount_minor(result.param("Amount")),
    )
