"""Money: integer cents everywhere, decimal strings with two places on the wire.

Rounding happens here, at named boundaries, with a named mode (always up: the gateway never
charges a customer less than a price, nor a fee less than its rate).
"""

from decimal import ROUND_CEILING, Decimal, InvalidOperation

CENTS_PER_UNIT = 100
PPM = 1_000_000  # fee rates are stored in parts per million: 0.022 = 22,000 ppm


class AmountError(ValueError):
    """The amount is not a finite positive number."""


def parse_amount_to_whole_units(raw: object) -> int:
    """A number or decimal string -> whole shillings, rounded UP (`"1499.01"` -> 1500)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
        raise AmountError("A valid number is required.")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise AmountError("A valid number is required.") from None
    if not value.is_finite():
        raise AmountError("A valid number is required.")
    if value <= 0:
        raise AmountError("Ensure this value is greater than 0.")
    return int(value.to_integral_value(rounding=ROUND_CEILING))


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
    try:
        value = Decimal(str(rate))
    except InvalidOperation:
        raise ValueError(f"not a valid fee rate: {rate}") from None
    if not value.is_finite() or value < 0 or value >= 1:
        raise ValueError("fee rate must be at least 0 and below 1")
    return int((value * PPM).to_integral_value(rounding=ROUND_CEILING))


def ppm_to_rate(ppm: int) -> str:
    return str((Decimal(ppm) / PPM).normalize())
