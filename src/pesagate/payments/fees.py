"""Tariffs and fees (SPEC section 2), in integer cents."""

from dataclasses import dataclass

from pesagate.kit.money import CENTS_PER_UNIT, ceil_to_whole_unit, fee_minor
from pesagate.models import Business, Tariff

MPESA_MAX_MINOR = 250_000 * CENTS_PER_UNIT  # M-Pesa's per-transaction cap


@dataclass(frozen=True, slots=True)
class Quote:
    amount_minor: int  # what was asked for, rounded up to whole shillings
    value_minor: int  # what the customer is prompted for
    charges_minor: int  # the fee
    net_minor: int  # what the merchant's wallet receives
    tariff: Tariff


def quote(amount_units: int, tariff: Tariff, business: Business) -> Quote:
    amount = amount_units * CENTS_PER_UNIT
    fee = fee_minor(amount, business.fee_rate_ppm, business.fee_min_minor)
    if tariff is Tariff.BUSINESS_PAYS:
        return Quote(amount, amount, fee, amount - fee, tariff)
    # CUSTOMER-PAYS: the prompt carries whole shillings, so the value is rounded up and the
    # fee absorbs the rounding.
    value = ceil_to_whole_unit(amount + fee)
    return Quote(amount, value, value - amount, amount, tariff)


def effective_tariff(requested: Tariff | None, business: Business) -> Tariff:
    return requested or business.default_tariff or Tariff.BUSINESS_PAYS


def limit_error(value_minor: int, business: Business) -> str | None:
    """The message for a value outside the business's limits or M-Pesa's cap, else None."""
    low = business.min_amount_minor
    high = min(business.max_amount_minor, MPESA_MAX_MINOR)
    if value_minor < low:
        return f"Ensure this value is at least {_units(low)}."
    if value_minor > high:
        return f"Ensure this value is at most {_units(high)}."
    return None


def _units(minor: int) -> str:
    units, cents = divmod(minor, CENTS_PER_UNIT)
    return str(units) if cents == 0 else f"{units}.{cents:02d}"
