"""Tariffs and fees (SPEC section 2), in integer cents: rules of a business's payment settings."""

from dataclasses import dataclass

from pesagate.kit.money import CENTS_PER_UNIT, ceil_to_whole_unit, fee_minor
from pesagate.merchants.views import BusinessTerms
from pesagate.models import Tariff

MPESA_MAX_MINOR = 250_000 * CENTS_PER_UNIT  # M-Pesa's per-transaction cap


@dataclass(frozen=True, slots=True)
class Quote:
    amount_minor: int  # what was asked for, rounded up to whole shillings
    value_minor: int  # what the customer is prompted for
    charges_minor: int  # the fee
    net_minor: int  # what the merchant's wallet receives
    tariff: Tariff


def quote(amount_units: int, tariff: Tariff, business: BusinessTerms) -> Quote:
    amount = amount_units * CENTS_PER_UNIT
    fee = fee_minor(amount, business.fee_rate_ppm, business.fee_min_minor)
    if tariff is Tariff.BUSINESS_PAYS:
        return Quote(amount, amount, fee, amount - fee, tariff)
    # CUSTOMER-PAYS: the prompt carries whole shillings, so the value is rounded up and the
    # fee absorbs the rounding.
    value = ceil_to_whole_unit(amount + fee)
    return Quote(amount, value, value - amount, amount, tariff)


def effective_tariff(requested: Tariff | None, business: BusinessTerms) -> Tariff:
    return requested or business.default_tariff or Tariff.BUSINESS_PAYS


def amount_error(priced: Quote, business: BusinessTerms) -> str | None:
    """Why this payment cannot be taken, else None (SPEC section 2). Both the merchant's amount
    and what the customer is prompted for (more, under CUSTOMER-PAYS) lie within the business's
    limits and M-Pesa's cap; and the fee stays below the amount, or the payment would earn the
    merchant nothing (under BUSINESS-PAYS its wallet would go negative)."""
    low = business.min_amount_minor
    high = min(business.max_amount_minor, MPESA_MAX_MINOR)
    if priced.amount_minor < low:
        return f"Ensure this value is at least {_units(low)}."
    if priced.value_minor > high:  # the value is never below the amount
        return f"Ensure this value is at most {_units(high)}."
    fee = fee_minor(priced.amount_minor, business.fee_rate_ppm, business.fee_min_minor)
    if fee >= priced.amount_minor:
        return f"Ensure this value is greater than its fee ({_units(fee)})."
    return None


def smallest_amount_minor(business: BusinessTerms) -> int:
    """The least amount a payment can have: amounts are whole shillings, at least one."""
    return ceil_to_whole_unit(max(business.min_amount_minor, CENTS_PER_UNIT))


def settings_error(business: BusinessTerms) -> str | None:
    """Why these payment settings cannot be kept, else None.

    The fee must be below every amount the limits allow. It is enough to look at the smallest:
    with integer cents, amount - ceil(amount * rate) never decreases as the amount grows, and
    a minimum fee weighs most on the smallest amount."""
    if business.min_amount_minor > business.max_amount_minor:
        return "min amount must not exceed max amount"
    smallest = smallest_amount_minor(business)
    fee = fee_minor(smallest, business.fee_rate_ppm, business.fee_min_minor)
    if fee >= smallest:
        return (
            f"the fee on the smallest payment (KES {_units(smallest)}) would be KES "
            f"{_units(fee)}: raise the min amount above the fee, or lower the fee"
        )
    return None


def _units(minor: int) -> str:
    units, cents = divmod(minor, CENTS_PER_UNIT)
    return str(units) if cents == 0 else f"{units}.{cents:02d}"
