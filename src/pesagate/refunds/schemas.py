"""Validation of `POST /chargebacks/`: KulmiPay's `{invoice_id, amount, reason}` and IntaSend's
`{invoice, amount, reason, reason_details}`, DRF-style messages."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, model_validator

from pesagate.errors import ValidationFailed
from pesagate.kit.api import validate_body
from pesagate.kit.money import AmountError, parse_amount_to_minor
from pesagate.kit.text import check_plain_text
from pesagate.refunds.reasons import REASONS

# Matched without regard to case or spaces.
_REASONS = {reason.casefold(): reason for reason in REASONS}
REASON_DETAILS_MAX = 500
INVOICE_ID_MAX = 32


def _invoice(raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)  # IntaSend's documentation types it as a number
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    text = raw.strip()
    if len(text) > INVOICE_ID_MAX or not (text.isascii() and text.isalnum()):
        raise ValueError("Not a valid invoice id.")
    return text.upper()


def _amount(raw: object) -> int:
    try:
        return parse_amount_to_minor(raw)
    except AmountError as exc:
        raise ValueError(str(exc)) from None


def _reason(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    reason = _REASONS.get(" ".join(raw.split()).casefold())
    if reason is None:
        choices = ", ".join(f'"{r}"' for r in REASONS)
        raise ValueError(f'"{raw[:50]}" is not a valid choice: {choices}.')
    return reason


def _details(raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValueError("Not a valid string.")
    if len(raw) > REASON_DETAILS_MAX:
        raise ValueError(f"Ensure this field has no more than {REASON_DETAILS_MAX} characters.")
    return check_plain_text(raw.strip())


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    invoice_id: Annotated[str | None, PlainValidator(_invoice, json_schema_input_type=str)] = None
    invoice: Annotated[str | None, PlainValidator(_invoice, json_schema_input_type=str)] = None
    amount: Annotated[int, PlainValidator(_amount, json_schema_input_type=float | str)]
    reason: Annotated[str, PlainValidator(_reason, json_schema_input_type=str)]
    reason_details: Annotated[str | None, PlainValidator(_details, json_schema_input_type=str)] = (
        None
    )

    @model_validator(mode="after")
    def _one_invoice(self) -> "RefundCreate":
        if self.invoice_id is None and self.invoice is None:
            raise ValueError("invoice_id: This field is required.")
        if None not in (self.invoice_id, self.invoice) and self.invoice_id != self.invoice:
            raise ValueError("invoice: invoice and invoice_id name different invoices.")
        return self

    @property
    def invoice_ref(self) -> str:
        ref = self.invoice_id or self.invoice
        assert ref is not None
        return ref


def field_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Model-level errors name their field in the message ("field: message")."""
    fixed: dict[str, list[str]] = {}
    for field, messages in errors.items():
        for message in messages:
            name, sep, rest = message.partition(": ")
            if field == "non_field_errors" and sep and name in RefundCreate.model_fields:
                fixed.setdefault(name, []).append(rest)
            else:
                fixed.setdefault(field, []).append(message)
    return fixed


def parse_request(body: dict[str, Any]) -> RefundCreate:
    try:
        return validate_body(RefundCreate, body)
    except ValidationFailed as failed:
        raise ValidationFailed(field_errors(failed.errors)) from None
