"""Money: integer cents everywhere, decimal strings with two places on the wire.

Rounding happens here, at named boundaries, with a named mode (always up: the gateway never
charges a customer less than a price, nor a fee less than its rate).

Every amount anyone sends is read by `parse_amount`, which decides on its form (SPEC section
2: ASCII digits, at most two places, no sign, exponent or whitespace in text) before any
arithmetic: `Decimal` and `int` accept forms whose conversion costs seconds of CPU
(`"1e2000000"`), and the digits of every script (Arabic-Indic "100").
"""

import math
import re
from decimal import ROUND_CEILING, Decimal

CENTS_PER_UNIT = 100
PPM = 1_000_000  # fee rates are stored in parts per million: 0.022 = 22,000 ppm

AMOUNT_MAX = Decimal("999999999.99")
AMOUNT_MAX_TEXT = 32  # characters: room for leading zeros, none for a digit string to convert
_AMOUNT_TEXT = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?", re.ASCII)
_CENT = Decimal("0.01")
_RATE_TEXT = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,12})?", re.ASCII)
INVALID_NUMBER = "A valid number is required."
TOO_MANY_PLACES = "Ensure that there are no more than 2 decimal places."


class AmountError(ValueError):
    """The amount is not a number in the accepted form, or is out of bounds."""


def parse_amount(raw: object, *, allow_zero: bool = False) -> Decimal:
    """A JSON number or a plain decimal string -> a Decimal with at most two places,
    0 < value <= AMOUNT_MAX (0 too with `allow_zero`)."""
    value = _bounded_decimal(raw)
    if value < 0 or (value == 0 and not allow_zero):
        raise AmountError(
            "Ensure this value is greater than or equal to 0."
            if allow_zero
            else "Ensure this value is greater than 0."
        )
    if value > AMOUNT_MAX:
        raise AmountError(f"Ensure this value is less than or equal to {AMOUNT_MAX}.")
    if value != value.quantize(_CENT):  # safe: the value is bounded by now
        raise AmountError(TOO_MANY_PLACES)
    return value


def _bounded_decimal(raw: object) -> Decimal:
    """The value of a JSON number (bounded by clamping: a float's exponent is within +-324,
    and a huge int is never converted to text), or of a text in the accepted form."""
    if isinstance(raw, bool):
        raise AmountError(INVALID_NUMBER)
    if isinstance(raw, int):
        limit = int(AMOUNT_MAX) + 1
        return Decimal(max(-limit, min(raw, limit)))
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise AmountError(INVALID_NUMBER)
        return Decimal(repr(raw))
    if isinstance(raw, Decimal):
        raw = str(raw)
    if not isinstance(raw, str) or len(raw) > AMOUNT_MAX_TEXT:
        raise AmountError(INVALID_NUMBER)
    if not _AMOUNT_TEXT.fullmatch(raw):
        # A third decimal place has its own message; anything else is not a number here.
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", raw, re.ASCII):
            raise AmountError(TOO_MANY_PLACES)
        raise AmountError(INVALID_NUMBER)
    return Decimal(raw)


def parse_amount_to_whole_units(raw: object) -> int:
    """An amount -> whole shillings, rounded UP (`"1499.01"` -> 1500)."""
    return int(parse_amount(raw).to_integral_value(rounding=ROUND_CEILING))


def parse_amount_to_minor(raw: object, *, allow_zero: bool = False) -> int:
    """An amount -> cents."""
    return int(parse_amount(raw, allow_zero=allow_zero) * CENTS_PER_UNIT)


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def fee_minor(amount_minor: int, fee_rate_ppm: int, fee_min_minor: int) -> int:
    """fee(x) = max(fee_min, ceil_to_cent(x * fee_rate))."""
    return max(fee_min_minor, ceil_div(amount_minor * fee_rate_ppm, PPM))


def ceil_to_whole_unit(amount_minor: int) -> int:
    return ceil_div(amount_minor, CENTS_PER_UNIT) * CENTS_PER_UNIT


def format_minor(amount_minor: int) -> str:
    """Cents -> `"1500.00"` (signed when negative). PostgreSQL sums arrive as Decimal."""
    amount_minor = int(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    units, cents = divmod(abs(amount_minor), CENTS_PER_UNIT)
    return f"{sign}{units}.{cents:02d}"


def rate_to_ppm(rate: Decimal | float | str) -> int:
    """A fee rate like `0.022` -> 22,000 parts per million (exact to 6 decimal places)."""
    text = str(rate).strip()
    if not _RATE_TEXT.fullmatch(text):
        raise ValueError(f"not a valid fee rate: {rate}")
    value = Decimal(text)
    if value >= 1:
        raise ValueError("fee rate must be at least 0 and below 1")
    return int((value * PPM).to_integral_value(rounding=ROUND_CEILING))


def ppm_to_rate(ppm: int) -> str:
    return str((Decimal(ppm) / PPM).normalize())
