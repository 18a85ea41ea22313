"""The sandbox phone numbers of SPEC section 9, and how a transaction's plan is drawn."""

import random
from dataclasses import replace

from pesagate.mpesa.protocol import ResultCode
from pesagate.simulator.state import Behaviour, Customer, FaultProfile, Plan

INSUFFICIENT_BALANCE_MSISDN = "254700000001"
INTERACTIVE_MSISDN = "254700009008"
SPIKE_ARREST_MSISDN = "254700009004"

# Numbers whose behaviour is fixed; faults never apply to them.
SCENARIOS: dict[str, Plan] = {
    # Insufficient balance arises naturally: this subscriber's M-Pesa balance starts at zero.
    INSUFFICIENT_BALANCE_MSISDN: Plan(),
    "254700001032": Plan(behaviour=Behaviour.FIXED, fixed_code=ResultCode.CANCELLED),
    "254700001037": Plan(behaviour=Behaviour.NO_ANSWER),
    "254700002001": Plan(behaviour=Behaviour.FIXED, fixed_code=ResultCode.WRONG_PIN),
    "254700001019": Plan(behaviour=Behaviour.FIXED, fixed_code=ResultCode.TRANSACTION_EXPIRED),
    "254700009001": Plan(callback_copies=0),
    "254700009002": Plan(callback_copies=3),
    "254700009003": Plan(early_callback=True),
    SPIKE_ARREST_MSISDN: Plan(),  # refused at the push; see `push_refused`
    "254700009005": Plan(response_lost=True),
    "254700009006": Plan(late_callback=True),
    "254700009007": Plan(forced_pending_queries=3),
    INTERACTIVE_MSISDN: Plan(behaviour=Behaviour.INTERACTIVE),
}

# Scripted outcomes (`POST /control/customers/{msisdn}` `outcome`) by name.
NAMED_OUTCOMES: dict[str, tuple[Behaviour, int | None]] = {
    "approve": (Behaviour.APPROVE, None),
    "success": (Behaviour.APPROVE, None),
    "insufficient": (Behaviour.FIXED, ResultCode.INSUFFICIENT_BALANCE),
    "cancel": (Behaviour.FIXED, ResultCode.CANCELLED),
    "no_answer": (Behaviour.NO_ANSWER, None),
    "wrong_pin": (Behaviour.FIXED, ResultCode.WRONG_PIN),
    "expired": (Behaviour.FIXED, ResultCode.TRANSACTION_EXPIRED),
    "interactive": (Behaviour.INTERACTIVE, None),
}


def parse_outcome(outcome: str | int) -> tuple[Behaviour, int | None]:
    """A scripted outcome: a name of NAMED_OUTCOMES or a result code (`0` means approve)."""
    text = str(outcome).strip().lower()
    if text in NAMED_OUTCOMES:
        return NAMED_OUTCOMES[text]
    if text.isascii() and text.isdigit():
        code = int(text)
        return (Behaviour.APPROVE, None) if code == 0 else (Behaviour.FIXED, code)
    raise ValueError(f"unknown outcome {outcome!r}; use one of {sorted(NAMED_OUTCOMES)} or a code")


def push_refused(msisdn: str, rng: random.Random, faults: FaultProfile) -> bool:
    """Spike arrest: always for its scenario number, at the fault rate for ordinary numbers.

    The draw is made for every push so that the seeded sequence does not depend on the number.
    """
    drawn = rng.random() < faults.push_error
    if msisdn in SCENARIOS:
        return msisdn == SPIKE_ARREST_MSISDN
    return drawn


def draw_plan(
    msisdn: str,
    rng: random.Random,
    faults: FaultProfile,
    delay_range_s: tuple[float, float],
    customer: Customer,
) -> Plan:
    """Decide a transaction's fate. Every draw happens in a fixed order, whatever the number,
    so one seed gives one sequence of outcomes."""
    delay_s = rng.uniform(*delay_range_s)
    drawn = Plan(
        delay_s=delay_s,
        callback_copies=_draw_copies(rng, faults),
        early_callback=rng.random() < faults.early_callback,
        late_callback=rng.random() < faults.late_callback,
        response_lost=rng.random() < faults.push_response_lost,
        query_pending_rate=faults.query_pending,
    )
    # A lost response and a lost callback may fall on one push: then no client ever learns
    # the CheckoutRequestID, and only the statement (Pull Transactions) shows the payment.
    plan = replace(SCENARIOS[msisdn], delay_s=delay_s) if msisdn in SCENARIOS else drawn
    if customer.outcome is not None:
        behaviour, code = parse_outcome(customer.outcome)
        plan = replace(plan, behaviour=behaviour, fixed_code=code)
    if customer.delay_s is not None:
        plan = replace(plan, delay_s=customer.delay_s)
    if customer.response_lost:
        plan = replace(plan, response_lost=True)
    if customer.callback_lost:
        plan = replace(plan, callback_copies=0)
    if customer.hold:
        plan = replace(plan, held=True)
    return plan


def _draw_copies(rng: random.Random, faults: FaultProfile) -> int:
    lost = rng.random() < faults.lost_callback
    duplicated = rng.random() < faults.duplicate_callback
    if lost:
        return 0
    return 2 if duplicated else 1
