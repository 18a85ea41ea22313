"""Request validation for webhook endpoints."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainValidator

from pesagate.kit.text import check_plain_text
from pesagate.webhooks.urls import UnsafeDestination, check_url_syntax


def _url(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    if len(raw) > 2048:
        raise ValueError("Ensure this field has no more than 2048 characters.")
    check_plain_text(raw)
    try:
        check_url_syntax(raw.strip(), live=False)  # the live rules need DNS: the service
    except UnsafeDestination as exc:
        raise ValueError(str(exc)) from None
    return raw.strip()


def _challenge(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("This field may not be blank.")
    if len(raw) > 255:
        raise ValueError("Ensure this field has no more than 255 characters.")
    return check_plain_text(raw)


def _flag(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError("Must be a valid boolean.")
    return raw


Flag = Annotated[bool | None, PlainValidator(_flag, json_schema_input_type=bool)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    endpoint: Annotated[str, PlainValidator(_url, json_schema_input_type=str)]
    challenge: Annotated[str, PlainValidator(_challenge, json_schema_input_type=str)]
    collection_event: Flag = True
    send_money_event: Flag = False
    reversal_event: Flag = False
    wallet_transfer_event: Flag = False


class EndpointUpdate(BaseModel):
    """PATCH: only the fields sent change. Setting is_active true re-enables a disabled
    endpoint and resets its failures_count."""

    model_config = ConfigDict(extra="ignore")

    endpoint: Annotated[str | None, PlainValidator(_url, json_schema_input_type=str)] = None
    challenge: Annotated[str | None, PlainValidator(_challenge, json_schema_input_type=str)] = None
    is_active: Flag = None
    collection_event: Flag = None
    send_money_event: Flag = None
    reversal_event: Flag = None
    wallet_transfer_event: Flag = None
