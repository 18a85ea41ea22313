"""The simulator's core: tokens, pushes, queries, the simulated customers, and callbacks.

Everything runs on one event loop, so state changes between two `await`s are atomic and need
no locks. Every accepted push becomes a `SimTransaction` with a task that lets its customer
decide, then finalises it and sends the callbacks its plan calls for.
"""

import asyncio
import base64
import binascii
import contextlib
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from pesagate.kit.clock import nairobi_now, utc_now
from pesagate.kit.phones import mask_msisdn
from pesagate.mpesa.protocol import (
    INVALID_TOKEN_MESSAGE,
    MERCHANT_UNKNOWN_MESSAGE,
    PUSH_ACCEPTED_DESCRIPTION,
    QUERY_ACCEPTED_DESCRIPTION,
    QUERY_PROCESSING_MESSAGE,
    QUERY_STILL_PROCESSING_DESC,
    QUERY_UNKNOWN_MESSAGE,
    SPIKE_ARREST_MESSAGE,
    SUBSCRIBER_LOCKED_MESSAGE,
    WRONG_CREDENTIALS_MESSAGE,
    ErrorCode,
    ResultCode,
    TransactionType,
    result_description,
    stk_password,
)
from pesagate.simulator import ids
from pesagate.simulator.callbacks import CallbackSender, callback_text
from pesagate.simulator.initiator import Acknowledgement, InitiatorDesk, InitiatorRequest
from pesagate.simulator.scenarios import INSUFFICIENT_BALANCE_MSISDN, draw_plan, push_refused
from pesagate.simulator.settings import SimulatorSettings
from pesagate.simulator.state import (
    Behaviour,
    Customer,
    CustomerScript,
    FaultProfile,
    SimTransaction,
    TxState,
)
from pesagate.simulator.validation import BadCredentials, DarajaError, parse_push, parse_query

log = structlog.get_logger("pesagate.simulator")

PIN_ACTION_PREFIX = "pin:"
CANCEL_ACTION = "cancel"


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What the push endpoint answers, and whether the answer must be lost on the wire."""

    body: dict[str, str]
    drop_response: bool


class Simulator:
    def __init__(
        self, settings: SimulatorSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """`clock`: monotonic seconds, for token lifetimes and the Rule 17 window (tests pass
        a clock they move by hand)."""
        self.settings = settings
        self.clock = clock
        self.callbacks = CallbackSender(
            settings.callback_timeout_s, settings.callback_max_connections
        )
        self._tokens: dict[str, float] = {}  # access token -> expiry on `clock`
        self._tasks: set[asyncio.Task[None]] = set()
        # Reversal and Transaction Status; its key pair outlives resets.
        self.initiator = InitiatorDesk(settings)
        self._init_state(FaultProfile(seed=settings.seed))

    def _init_state(self, faults: FaultProfile) -> None:
        self.faults = faults
        self.seed = faults.seed if faults.seed is not None else int.from_bytes(os.urandom(8))
        self._sequence = 0
        self.transactions: dict[str, SimTransaction] = {}
        self.customers: dict[str, Customer] = {}
        self._open_by_phone: dict[str, str] = {}
        # The statement: successful payments in the order they were made (Pull Transactions).
        self.paid: list[SimTransaction] = []
        self.by_receipt: dict[str, SimTransaction] = {}
        self.pull_registrations: dict[str, dict[str, str]] = {}  # shortcode -> registration

    # ---------------------------------------------------------------- OAuth
    def issue_token(self, grant_type: str | None, authorization: str | None) -> dict[str, str]:
        if grant_type != "client_credentials":
            raise DarajaError(400, ErrorCode.INVALID_GRANT_TYPE, "Invalid grant type passed")
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise DarajaError(
                400, ErrorCode.INVALID_AUTH_TYPE, "Invalid authentication type passed"
            )
        if not self._credentials_match(encoded.strip()):
            raise BadCredentials
        token = ids.access_token()
        now = self.clock()
        if len(self._tokens) > 10_000:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
        self._tokens[token] = now + self.settings.token_ttl_s
        return {"access_token": token, "expires_in": str(int(self.settings.token_ttl_s))}

    def _credentials_match(self, encoded: str) -> bool:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.settings.consumer_key}:{self.settings.consumer_secret}"
        return decoded == expected

    def check_token(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= self.clock():
            raise DarajaError(404, ErrorCode.INVALID_TOKEN, INVALID_TOKEN_MESSAGE)

    def revoke_tokens(self) -> int:
        count = len(self._tokens)
        self._tokens.clear()
        return count

    # ---------------------------------------------------------------- STK push
    async def push(self, body: dict[str, Any]) -> PushOutcome:
        request = parse_push(body)
        self._check_merchant(request.shortcode, request.password, request.timestamp)
        if request.party_b != self._expected_party_b(request.shortcode):
            raise DarajaError(400, ErrorCode.INVALID_FIELD, "Bad Request - Invalid PartyB")
        rng = self._next_rng()
        if push_refused(request.phone_number, rng, self.faults):
            raise DarajaError(500, ErrorCode.SPIKE_ARREST, SPIKE_ARREST_MESSAGE)
        if request.phone_number in self._open_by_phone:
            raise DarajaError(500, ErrorCode.MERCHANT_OR_SUBSCRIBER, SUBSCRIBER_LOCKED_MESSAGE)
        customer = self.customer(request.phone_number)
        delay_range = (self.settings.delay_min_s, self.settings.delay_max_s)
        plan = draw_plan(request.phone_number, rng, self.faults, delay_range, customer)
        if request.transaction_type != self._kind_of(request.shortcode):
            # Product assignment is checked by M-Pesa, not by the API gateway: it arrives as a
            # failed result, not as a synchronous error.
            plan.behaviour, plan.fixed_code = Behaviour.FIXED, ResultCode.NOT_PERMITTED
        tx = self._open_transaction(request, plan, rng)
        log.info(
            "stk push accepted",
            checkout_request_id=tx.checkout_request_id,
            phone=mask_msisdn(tx.phone_number),
            amount=tx.amount,
        )
        if plan.early_callback:
            self._finalize(tx, self._resolve_action(tx, PIN_ACTION_PREFIX + self.settings.pin))
            await self._deliver_callbacks(tx)
        else:
            self._spawn(self._run_customer(tx))
        response = {
            "MerchantRequestID": tx.merchant_request_id,
            "CheckoutRequestID": tx.checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": PUSH_ACCEPTED_DESCRIPTION,
            "CustomerMessage": PUSH_ACCEPTED_DESCRIPTION,
        }
        return PushOutcome(body=response, drop_response=plan.response_lost)

    def _check_merchant(self, shortcode: str, password: str, timestamp: str) -> None:
        if shortcode not in (self.settings.paybill_shortcode, self.settings.buygoods_shortcode):
            raise DarajaError(500, ErrorCode.MERCHANT_OR_SUBSCRIBER, MERCHANT_UNKNOWN_MESSAGE)
        if password != stk_password(shortcode, self.settings.passkey, timestamp):
            raise DarajaError(500, ErrorCode.MERCHANT_OR_SUBSCRIBER, WRONG_CREDENTIALS_MESSAGE)

    def _kind_of(self, shortcode: str) -> TransactionType:
        if shortcode == self.settings.paybill_shortcode:
            return TransactionType.PAYBILL
        return TransactionType.BUY_GOODS

    def _expected_party_b(self, shortcode: str) -> str:
        if shortcode == self.settings.buygoods_shortcode:
            return self.settings.till_number
        return shortcode

    def _next_rng(self) -> random.Random:
        """Each push gets its own generator, seeded from the run's seed and its sequence number,
        so a transaction's fate does not depend on how other transactions interleave."""
        self._sequence += 1
        return random.Random(f"{self.seed}:{self._sequence}")

    def _open_transaction(self, request: Any, plan: Any, rng: random.Random) -> SimTransaction:
        now = nairobi_now()
        checkout_id = ids.checkout_request_id(now, request.phone_number)
        while checkout_id in self.transactions:  # two pushes to one phone in one millisecond
            now = now.replace(microsecond=(now.microsecond + 1000) % 1_000_000)
            checkout_id = ids.checkout_request_id(now, request.phone_number)
        tx = SimTransaction(
            checkout_request_id=checkout_id,
            merchant_request_id=ids.merchant_request_id(rng),
            shortcode=request.shortcode,
            transaction_type=request.transaction_type.value,
            party_a=request.party_a,
            party_b=request.party_b,
            phone_number=request.phone_number,
            amount=request.amount,
            callback_url=request.callback_url,
            account_reference=request.account_reference,
            transaction_desc=request.transaction_desc,
            created_at=utc_now(),
            plan=plan,
            rng=rng,
            customer_action=asyncio.get_running_loop().create_future(),
        )
        self.transactions[checkout_id] = tx
        self._open_by_phone[tx.phone_number] = checkout_id
        self.customer(tx.phone_number).last_checkout_id = checkout_id
        return tx

    # ---------------------------------------------------------------- the customer
    async def _run_customer(self, tx: SimTransaction) -> None:
        plan = tx.plan
        if plan.held:
            await tx.released.wait()
        waits_for_ttl = plan.behaviour in (Behaviour.NO_ANSWER, Behaviour.INTERACTIVE)
        timeout_s = self.settings.prompt_ttl_s
        if not waits_for_ttl:
            timeout_s = min(plan.delay_s, timeout_s)
        assert tx.customer_action is not None
        try:
            action = await asyncio.wait_for(asyncio.shield(tx.customer_action), timeout_s)
        except TimeoutError:
            action = None
        if action is None:
            code = self._default_result(tx, expired=waits_for_ttl or timeout_s < plan.delay_s)
        else:
            code = self._resolve_action(tx, action)
        self._finalize(tx, code)
        await self._deliver_callbacks(tx)

    def _default_result(self, tx: SimTransaction, *, expired: bool) -> int:
        if expired:
            return ResultCode.NO_RESPONSE
        if tx.plan.behaviour is Behaviour.FIXED and tx.plan.fixed_code is not None:
            return tx.plan.fixed_code
        return self._charge(tx)

    def _resolve_action(self, tx: SimTransaction, action: str) -> int:
        """A PIN or Cancel from the customer (the phone page, or the plan's own approval)."""
        if action == CANCEL_ACTION:
            return ResultCode.CANCELLED
        if action.removeprefix(PIN_ACTION_PREFIX) != self.settings.pin:
            return ResultCode.WRONG_PIN
        if tx.plan.behaviour is Behaviour.FIXED and tx.plan.fixed_code is not None:
            return tx.plan.fixed_code
        return self._charge(tx)

    def _charge(self, tx: SimTransaction) -> int:
        customer = self.customer(tx.phone_number)
        amount_cents = tx.amount * 100
        now = self.clock()
        if self.settings.rule_17 and any(
            amount == amount_cents and now - at < self.settings.rule_17_window_s
            for at, amount in customer.recent_payments
        ):
            return ResultCode.RULE_LIMITED
        if customer.balance_cents < amount_cents:
            return ResultCode.INSUFFICIENT_BALANCE
        customer.balance_cents -= amount_cents
        customer.recent_payments.append((now, amount_cents))
        return ResultCode.SUCCESS

    def customer(self, msisdn: str) -> Customer:
        if msisdn not in self.customers:
            balance_kes = 0 if msisdn == INSUFFICIENT_BALANCE_MSISDN else None
            if balance_kes is None:
                balance_kes = self.settings.default_balance_kes
            self.customers[msisdn] = Customer(msisdn=msisdn, balance_cents=balance_kes * 100)
        return self.customers[msisdn]

    def customer_acts(self, msisdn: str, action: str) -> SimTransaction | None:
        """The virtual phone page: a PIN (`pin:1234`) or `cancel` for the open prompt."""
        tx = self.open_prompt(msisdn)
        if tx is None or tx.customer_action is None or tx.customer_action.done():
            return None
        tx.customer_action.set_result(action)
        return tx

    def open_prompt(self, msisdn: str) -> SimTransaction | None:
        checkout_id = self._open_by_phone.get(msisdn)
        return self.transactions.get(checkout_id) if checkout_id else None

    # ---------------------------------------------------------------- results
    def _finalize(self, tx: SimTransaction, code: int) -> None:
        if tx.state is TxState.FINAL:
            return
        now = nairobi_now()
        tx.state = TxState.FINAL
        tx.result_code = code
        tx.result_desc = result_description(code)
        tx.finalized_at = utc_now()
        if code == ResultCode.SUCCESS:
            tx.receipt = ids.mpesa_receipt(tx.rng, now)
            tx.transaction_date = now
            self.paid.append(tx)
            self.by_receipt[tx.receipt] = tx
            self._record_sms(tx)
        tx.callback_text = callback_text(tx)
        if self._open_by_phone.get(tx.phone_number) == tx.checkout_request_id:
            del self._open_by_phone[tx.phone_number]
        log.info("stk transaction final", checkout_request_id=tx.checkout_request_id, result=code)

    def _record_sms(self, tx: SimTransaction) -> None:
        customer = self.customer(tx.phone_number)
        assert tx.transaction_date is not None
        customer.messages.appendleft(
            f"{tx.receipt} Confirmed. Ksh{tx.amount:,}.00 sent to {tx.shortcode} for account "
            f"{tx.account_reference} on {tx.transaction_date:%d/%m/%y at %I:%M %p}. "
            f"New M-PESA balance is Ksh{customer.balance_cents / 100:,.2f}."
        )

    async def _deliver_callbacks(self, tx: SimTransaction) -> None:
        plan = tx.plan
        if plan.callback_copies == 0:
            log.info("callback withheld (lost)", checkout_request_id=tx.checkout_request_id)
            return
        if plan.late_callback:
            elapsed_s = (utc_now() - tx.created_at).total_seconds()
            await asyncio.sleep(max(0.0, self.settings.late_callback_s - elapsed_s))
        # Duplicates go out concurrently: the hardest case for a receiver.
        await asyncio.gather(*(self.callbacks.send(tx) for _ in range(plan.callback_copies)))

    async def resend_callback(self, tx: SimTransaction) -> None:
        if tx.callback_text is not None:
            await self.callbacks.send(tx)

    # ---------------------------------------------------------------- STK query
    def query(self, body: dict[str, Any]) -> dict[str, str]:
        request = parse_query(body)
        self._check_merchant(request.shortcode, request.password, request.timestamp)
        tx = self.transactions.get(request.checkout_request_id)
        if tx is None or tx.shortcode != request.shortcode:
            raise DarajaError(500, ErrorCode.MERCHANT_OR_SUBSCRIBER, QUERY_UNKNOWN_MESSAGE)
        tx.queries += 1
        if self._answers_pending(tx):
            return self._pending_answer(tx)
        return self._query_answer(tx, str(tx.result_code), tx.result_desc or "")

    def _answers_pending(self, tx: SimTransaction) -> bool:
        if tx.plan.forced_pending_queries > 0:
            tx.plan.forced_pending_queries -= 1
            return True
        pending_draw = tx.rng.random() < tx.plan.query_pending_rate
        return tx.state is TxState.OPEN or pending_draw

    def _pending_answer(self, tx: SimTransaction) -> dict[str, str]:
        if self.settings.query_pending_shape == "4999":
            return self._query_answer(
                tx, str(ResultCode.STILL_PROCESSING), QUERY_STILL_PROCESSING_DESC
            )
        raise DarajaError(500, ErrorCode.MERCHANT_OR_SUBSCRIBER, QUERY_PROCESSING_MESSAGE)

    @staticmethod
    def _query_answer(tx: SimTransaction, result_code: str, result_desc: str) -> dict[str, str]:
        return {
            "ResponseCode": "0",
            "ResponseDescription": QUERY_ACCEPTED_DESCRIPTION,
            "MerchantRequestID": tx.merchant_request_id,
            "CheckoutRequestID": tx.checkout_request_id,
            "ResultCode": result_code,
            "ResultDesc": result_desc,
        }

    # ---------------------------------------------------------------- initiator APIs
    async def reverse(self, body: dict[str, Any]) -> Acknowledgement:
        """A Reversal request: processed now, its Result sent as the faults decide."""
        request = self.initiator.reverse(body, self.by_receipt, self.faults, self.seed)
        self._refund_customer(request)
        return await self._acknowledge(request)

    async def transaction_status(self, body: dict[str, Any]) -> Acknowledgement:
        request = self.initiator.status(body, self.by_receipt, self.faults, self.seed)
        return await self._acknowledge(request)

    def portal_reversal(self, tx: SimTransaction) -> InitiatorRequest:
        request = self.initiator.portal_reversal(tx)
        self._refund_customer(request)
        return request

    def _refund_customer(self, request: InitiatorRequest) -> None:
        original = self.by_receipt.get(request.transaction_id)
        if request.reversed_money and original is not None:
            self.customer(original.phone_number).balance_cents += original.amount * 100

    async def _acknowledge(self, request: InitiatorRequest) -> Acknowledgement:
        # Held: processed already, but neither answered nor reported until released (a Result
        # that overtook the answer would settle what a test wants to watch while it waits).
        if self.initiator.hold_acknowledgements:
            await self.initiator.released.wait()
        self._spawn(self.initiator.deliver(request, self.settings.initiator_late_s))
        return self.initiator.acknowledgement(request)

    # ---------------------------------------------------------------- control
    def set_faults(self, faults: FaultProfile) -> None:
        if faults.seed is None:
            faults = faults.model_copy(update={"seed": self.faults.seed})
        if faults.seed != self.faults.seed:
            self.seed = faults.seed if faults.seed is not None else self.seed
            self._sequence = 0
        self.faults = faults

    def script_customer(self, msisdn: str, script: CustomerScript) -> Customer:
        customer = self.customer(msisdn)
        fields = script.model_fields_set
        if "balance" in fields and script.balance is not None:
            customer.balance_cents = round(script.balance * 100)
        if "outcome" in fields:
            customer.outcome = None if script.outcome is None else str(script.outcome)
        if "delay_s" in fields:
            customer.delay_s = script.delay_s
        if "response_lost" in fields:
            customer.response_lost = bool(script.response_lost)
        if "callback_lost" in fields:
            customer.callback_lost = bool(script.callback_lost)
        if "hold" in fields:
            customer.hold = bool(script.hold)
        return customer

    def release_customer(self, msisdn: str) -> Customer:
        """Stop holding this customer's prompts, and let the open one go on."""
        customer = self.customer(msisdn)
        customer.hold = False
        if (tx := self.open_prompt(msisdn)) is not None:
            tx.released.set()
        return customer

    async def reset(self) -> None:
        await self._cancel_tasks()
        self.initiator.reset()
        self._init_state(FaultProfile(seed=self.settings.seed))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def aclose(self) -> None:
        await self._cancel_tasks()
        await self.callbacks.aclose()
        await self.initiator.aclose()
