"""The simulator's in-memory records: transactions, customers and the active fault profile.

The simulator is "M-Pesa": its records are the ground truth that tests and soak runs compare the
gateway's books with, through `/control/transactions`.
"""

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from pesagate.kit.clock import rfc3339_ms
from pesagate.kit.jsonutil import loads


class TxState(StrEnum):
    OPEN = "OPEN"  # the prompt is on the phone, no result yet
    FINAL = "FINAL"  # the result code is decided; callbacks may still be on their way


class Behaviour(StrEnum):
    """What the simulated customer does with the prompt."""

    APPROVE = "approve"  # types the right PIN after the delay; the balance decides the result
    NO_ANSWER = "no_answer"  # ignores it; 1037 when the prompt expires
    INTERACTIVE = "interactive"  # waits for a PIN or Cancel on the virtual phone page
    FIXED = "fixed"  # ends with a fixed result code after the delay


@dataclass(slots=True)
class Plan:
    """Everything decided at push time for one transaction, drawn from its own seeded generator."""

    behaviour: Behaviour = Behaviour.APPROVE
    fixed_code: int | None = None
    delay_s: float = 0.0
    callback_copies: int = 1  # 0 = callback lost, 2+ = duplicates
    early_callback: bool = False  # decide at once, deliver the callback before the push answers
    late_callback: bool = False  # deliver the callback `late_callback_s` after the push
    response_lost: bool = False  # accept the push, then drop the connection before answering
    forced_pending_queries: int = 0  # this many queries answer "being processed" whatever
    query_pending_rate: float = 0.0  # each further query answers "being processed" this often
    held: bool = False  # the customer waits for a release before anything else


@dataclass(slots=True, eq=False)
class SimTransaction:
    checkout_request_id: str
    merchant_request_id: str
    shortcode: str
    transaction_type: str
    party_a: str
    party_b: str
    phone_number: str
    amount: int  # whole shillings, as M-Pesa carries them
    callback_url: str
    account_reference: str
    transaction_desc: str
    created_at: datetime
    plan: Plan
    rng: random.Random
    state: TxState = TxState.OPEN
    result_code: int | None = None
    result_desc: str | None = None
    receipt: str | None = None
    transaction_date: datetime | None = None  # Nairobi time of a successful payment
    finalized_at: datetime | None = None
    queries: int = 0
    reversal_receipt: str | None = None  # the receipt of the reversal that gave it back
    callbacks_sent: int = 0
    callbacks_answered: int = 0
    callbacks_failed: int = 0  # not delivered: refused, unreachable or not answered in time
    callback_text: str | None = None  # the exact JSON text of the result callback
    last_callback_text: str | None = None  # the last body actually POSTed
    customer_action: "asyncio.Future[str] | None" = None  # set by the virtual phone page
    released: asyncio.Event = field(default_factory=asyncio.Event)  # ends a held plan's wait

    def as_control_dict(self) -> dict[str, Any]:
        return {
            "checkout_request_id": self.checkout_request_id,
            "merchant_request_id": self.merchant_request_id,
            "business_short_code": self.shortcode,
            "transaction_type": self.transaction_type,
            "party_a": self.party_a,
            "party_b": self.party_b,
            "phone_number": self.phone_number,
            "amount": self.amount,
            "account_reference": self.account_reference,
            "transaction_desc": self.transaction_desc,
            "callback_url": self.callback_url,
            "state": self.state.value,
            "result_code": self.result_code,
            "result_desc": self.result_desc,
            "receipt": self.receipt,
            "reversal_receipt": self.reversal_receipt,
            "queries": self.queries,
            "callbacks_sent": self.callbacks_sent,
            "callbacks_answered": self.callbacks_answered,
            "callbacks_failed": self.callbacks_failed,
            "callback_body": loads(self.last_callback_text) if self.last_callback_text else None,
            "created_at": rfc3339_ms(self.created_at),
            "finalized_at": rfc3339_ms(self.finalized_at) if self.finalized_at else None,
        }


@dataclass(slots=True)
class Customer:
    """A simulated M-Pesa subscriber."""

    msisdn: str
    balance_cents: int
    outcome: str | None = None  # scripted through the control API; None = the default
    delay_s: float | None = None
    response_lost: bool = False  # scripted: every push's response is dropped
    callback_lost: bool = False  # scripted: no callback is ever sent
    hold: bool = False  # scripted: each prompt waits for a release before the customer acts
    last_checkout_id: str | None = None
    recent_payments: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=20))
    messages: deque[str] = field(default_factory=lambda: deque(maxlen=10))

    def as_dict(self) -> dict[str, Any]:
        return {
            "msisdn": self.msisdn,
            "balance": f"{self.balance_cents / 100:.2f}",
            "outcome": self.outcome,
            "delay_s": self.delay_s,
            "response_lost": self.response_lost,
            "callback_lost": self.callback_lost,
            "hold": self.hold,
            "messages": list(self.messages),
        }


class FaultProfile(BaseModel):
    """Fault rates (0..1) applied to numbers that are not scenario numbers."""

    seed: int | None = None
    lost_callback: float = Field(0.0, ge=0, le=1)
    duplicate_callback: float = Field(0.0, ge=0, le=1)
    early_callback: float = Field(0.0, ge=0, le=1)
    late_callback: float = Field(0.0, ge=0, le=1)
    push_error: float = Field(0.0, ge=0, le=1)
    push_response_lost: float = Field(0.0, ge=0, le=1)
    query_pending: float = Field(0.0, ge=0, le=1)
    statement_error: float = Field(0.0, ge=0, le=1)  # Pull Transactions answers spike arrest
    # Reversal and Transaction Status (simulator/initiator.py): what happens to the Result.
    # A lost acknowledgement (`reversal_response_lost`) still processes the reversal; a queue
    # timeout does not (a timeout notice goes to the QueueTimeOutURL instead).
    reversal_result_lost: float = Field(0.0, ge=0, le=1)
    reversal_result_duplicate: float = Field(0.0, ge=0, le=1)
    reversal_result_late: float = Field(0.0, ge=0, le=1)
    reversal_queue_timeout: float = Field(0.0, ge=0, le=1)
    reversal_response_lost: float = Field(0.0, ge=0, le=1)
    status_result_lost: float = Field(0.0, ge=0, le=1)


class CustomerScript(BaseModel):
    """`POST /control/customers/{msisdn}`: omitted fields stay as they are; null clears."""

    balance: float | None = Field(None, ge=0, description="M-Pesa balance in KES")
    outcome: str | int | None = Field(
        None,
        description="approve, insufficient, cancel, no_answer, wrong_pin, expired, interactive, "
        "or a result code",
    )
    delay_s: float | None = Field(None, ge=0)
    response_lost: bool | None = Field(
        None, description="drop every push response (the push is still accepted)"
    )
    callback_lost: bool | None = Field(None, description="never send a result callback")
    hold: bool | None = Field(
        None,
        description="each prompt waits for `POST /control/customers/{msisdn}/release` before "
        "the customer starts to act (a test sees the push answered before any result)",
    )
