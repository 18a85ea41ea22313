"""Validation of checkout sessions and payment links, in one pass with the business as
context (payments' `PaymentContext`), so every bad field is reported together."""

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo

from pesagate.kit.money import AmountError, parse_amount
from pesagate.kit.text import check_plain_text
from pesagate.models import Tariff
from pesagate.payments.schemas import Email, Phone, WalletField, amount_in_limits

URL_MAX = 2048
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?", re.ASCII)
_COUNTRY = re.compile(r"[A-Za-z]{2}", re.ASCII)
USAGE_LIMIT_MAX = 1_000_000


def _text(max_length: int, *, required: bool = False) -> Any:
    def check(raw: object) -> str | None:
        if raw is None or raw == "":
            if required:
                raise ValueError("This field may not be blank.")
            return None
        if not isinstance(raw, str):
            raise ValueError("Not a valid string.")
        if len(raw) > max_length:
            raise ValueError(f"Ensure this field has no more than {max_length} characters.")
        text = check_plain_text(raw.strip())
        if required and not text:
            raise ValueError("This field may not be blank.")
        return text or None

    return PlainValidator(check, json_schema_input_type=str | None)


def _open_amount(raw: object, info: ValidationInfo) -> int | None:
    """Whole shillings within the business's limits; absent or 0: the payer chooses."""
    if raw is None or raw == "":
        return None
    try:
        value = parse_amount(raw, allow_zero=True)
    except AmountError as exc:
        raise ValueError(str(exc)) from None
    return None if value == 0 else amount_in_limits(raw, info)


def _tariff(raw: object) -> Tariff | None:
    """The two tariffs; `CUSTOMER_PAYS` / `BUSINESS_PAYS` (intasend-php's examples) too."""
    if raw is None or raw == "":
        return None
    text = str(raw).replace("_", "-") if isinstance(raw, str) else raw
    try:
        return Tariff(str(text))
    except ValueError:
        raise ValueError(f'"{raw}" is not a valid choice.') from None


def _url(raw: object) -> str | None:
    """Where a browser is sent: http(s) only (never `javascript:`), without spaces."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > URL_MAX:
        raise ValueError(f"Enter a valid URL of at most {URL_MAX} characters.")
    url = raw.strip()
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url, re.ASCII):
        raise ValueError("Enter a valid http or https URL.")
    return url


def _origin(raw: object) -> str | None:
    """The embedding page's origin (`https://shop.example:8443`): postMessage's target."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not _ORIGIN.fullmatch(raw.strip().rstrip("/")):
        raise ValueError("Enter an origin: scheme, host and optional port, e.g. https://shop.ke")
    return raw.strip().rstrip("/")


def _method(raw: object) -> str | None:
    if raw in (None, ""):
        return None
    if raw != "M-PESA":
        raise ValueError(f'"{raw}" is not a supported method here: only "M-PESA" is.')
    return "M-PESA"


def _currency(raw: object) -> str:
    if raw not in (None, "", "KES"):
        raise ValueError(f'"{raw}" is not a valid choice: M-PESA collects KES.')
    return "KES"


def _country(raw: object) -> str | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or not _COUNTRY.fullmatch(raw):
        raise ValueError("Enter a two-letter country code.")
    return raw.upper()


def _flag(raw: object) -> bool:
    """A JSON boolean, or "true"/"false" as some SDKs send it."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if raw is None:
        return False
    raise ValueError("Must be a valid boolean.")


def _usage_limit(raw: object) -> int:
    if raw is None or raw == "":
        return 0
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ValueError("A valid integer is required.")
    text = str(raw)
    if not re.fullmatch(r"[0-9]{1,7}", text, re.ASCII) or int(text) > USAGE_LIMIT_MAX:
        raise ValueError(f"Ensure this value is a whole number from 0 to {USAGE_LIMIT_MAX}.")
    return int(text)


TariffField = Annotated[Tariff | None, PlainValidator(_tariff, json_schema_input_type=str | None)]
OpenAmount = Annotated[
    int | None, PlainValidator(_open_amount, json_schema_input_type=float | str | None)
]
Url = Annotated[str | None, PlainValidator(_url, json_schema_input_type=str | None)]
Flag = Annotated[bool, PlainValidator(_flag, json_schema_input_type=bool)]
Currency = Annotated[str, PlainValidator(_currency, json_schema_input_type=str)]


class CheckoutRequest(BaseModel):
    """`POST /checkout/`: the fields the SDKs' `checkout()` sends. Field order matters: the
    tariff is known when the amount's limits are checked."""

    model_config = ConfigDict(extra="ignore")

    mobile_tarrif: TariffField = None
    amount: OpenAmount = None
    currency: Currency = "KES"
    method: Annotated[str | None, PlainValidator(_method, json_schema_input_type=str | None)] = None
    phone_number: Phone | None = None
    email: Email = None
    first_name: Annotated[str | None, _text(45)] = None
    last_name: Annotated[str | None, _text(45)] = None
    country: Annotated[str | None, PlainValidator(_country, json_schema_input_type=str)] = None
    api_ref: Annotated[str | None, _text(70)] = None
    redirect_url: Url = None
    callback_url: Url = None
    host: Annotated[str | None, PlainValidator(_origin, json_schema_input_type=str | None)] = None
    wallet_id: WalletField = None
    comment: Annotated[str | None, _text(500)] = None
    version: Annotated[str | None, _text(16)] = None
    unique_api_ref: Flag = False
    public_key: str | None = None


def _identifier(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64:
        raise ValueError("This field may not be blank.")
    return raw.strip()


Identifier = Annotated[str, PlainValidator(_identifier, json_schema_input_type=str)]


class DetailsRequest(BaseModel):
    """`POST /checkout/details/`: the session, and its signature unless the secret key came."""

    model_config = ConfigDict(extra="ignore")

    checkout_id: Identifier
    signature: str | None = None


class PaymentLinkRequest(BaseModel):
    """`POST /paymentlinks/` (and updates, merged onto the link first). Field order matters,
    as for payments."""

    model_config = ConfigDict(extra="ignore")

    mobile_tarrif: TariffField = None
    title: Annotated[str, _text(140, required=True)]
    amount: OpenAmount = None
    currency: Currency = "KES"
    usage_limit: Annotated[int, PlainValidator(_usage_limit, json_schema_input_type=int)] = 0
    redirect_url: Url = None
    wallet_id: WalletField = None
    is_active: Flag = True
