"""Reversal and Transaction Status: the initiator APIs, as M-Pesa answers them.

A request is checked synchronously (token, body, field formats, the SecurityCredential's
base64), acknowledged with ids, and processed at once: a reversal moves the money back then
(or fails with its code); what is delayed, lost, duplicated or timed out is only the Result's
delivery, under the fault profile. So the ground truth (`/control/reversals`) always says
whether money moved, whatever the gateway heard.

Decisions where Daraja is undocumented are in docs/SIMULATOR.md ("Reversal and Transaction
Status").
"""

import asyncio
import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from pesagate.kit.clock import nairobi_now, rfc3339_ms, utc_now
from pesagate.kit.jsonutil import dumps
from pesagate.mpesa.protocol import (
    ACCEPTED_REQUEST_DESCRIPTION,
    AMOUNT_MAX_KES,
    QUEUE_TIMEOUT_DESCRIPTION,
    RECEIVER_IDENTIFIER_FIELD,
    RECEIVER_IDENTIFIER_ORGANISATION,
    REMARKS_MAX,
    REMARKS_MIN,
    REVERSAL_COMMAND,
    STATUS_COMMAND,
    STATUS_COMPLETED,
    STATUS_REVERSED,
    ReversalCode,
    reversal_description,
)
from pesagate.simulator import ids
from pesagate.simulator.security import SimulatorKeys, UnreadableCredential
from pesagate.simulator.settings import SimulatorSettings
from pesagate.simulator.state import FaultProfile, SimTransaction
from pesagate.simulator.validation import invalid

log = structlog.get_logger("pesagate.simulator")

CALLBACK_HEADERS = {"Content-Type": "application/json;charset=UTF-8"}
REVERSAL_QUEUE_URL = "https://internalsandbox.safaricom.co.ke/mpesa/reversalresults/v1/submit"
OCCASION_MAX = 100
STATUS_IDENTIFIER_TYPES = frozenset({"1", "2", "4"})


@dataclass(slots=True)
class Delivery:
    """What happens to one request's Result on its way out, drawn when it arrives."""

    copies: int = 1  # 0 = lost, 2 = duplicated
    late: bool = False
    queue_timeout: bool = False  # not processed: a timeout notice goes to QueueTimeOutURL
    response_lost: bool = False


@dataclass(slots=True, eq=False)
class InitiatorRequest:
    kind: str  # "reversal" or "status"
    originator_conversation_id: str
    conversation_id: str
    initiator: str
    transaction_id: str  # the receipt reversed or asked about
    amount: int | None
    result_url: str
    timeout_url: str
    remarks: str
    occasion: str | None
    created_at: datetime
    delivery: Delivery
    result_code: str | None = None
    result_desc: str | None = None
    receipt: str | None = None  # a successful reversal's own receipt
    reversed_money: bool = False
    result_text: str | None = None
    results_sent: int = 0
    results_answered: int = 0

    def as_control_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "originator_conversation_id": self.originator_conversation_id,
            "conversation_id": self.conversation_id,
            "initiator": self.initiator,
            "transaction_id": self.transaction_id,
            "amount": self.amount,
            "result_code": self.result_code,
            "result_desc": self.result_desc,
            "receipt": self.receipt,
            "reversed": self.reversed_money,
            "queue_timeout": self.delivery.queue_timeout,
            "result_url": self.result_url,
            "queue_timeout_url": self.timeout_url,
            "results_sent": self.results_sent,
            "results_answered": self.results_answered,
            "created_at": rfc3339_ms(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    body: dict[str, str]
    drop_response: bool


@dataclass
class InitiatorDesk:
    """The simulator's state for the initiator APIs (kept until a reset)."""

    settings: SimulatorSettings
    keys: SimulatorKeys = field(default_factory=SimulatorKeys)
    reversals: list[InitiatorRequest] = field(default_factory=list)
    status_queries: list[InitiatorRequest] = field(default_factory=list)
    reversed_by: dict[str, InitiatorRequest] = field(default_factory=dict)  # receipt -> reversal
    forced_codes: deque[str] = field(default_factory=deque)
    bad_attempts: int = 0
    locked: bool = False
    hold_acknowledgements: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    _sequence: int = 0
    _session: aiohttp.ClientSession | None = None

    def reset(self) -> None:
        self.reversals.clear()
        self.status_queries.clear()
        self.reversed_by.clear()
        self.forced_codes.clear()
        self.bad_attempts = 0
        self.locked = False
        self.release()
        self.hold_acknowledgements = False

    def release(self) -> None:
        self.released.set()
        self.released = asyncio.Event()

    # ------------------------------------------------------------ reversal

    def reverse(
        self,
        body: dict[str, Any],
        paid: dict[str, SimTransaction],
        faults: FaultProfile,
        seed: int,
    ) -> InitiatorRequest:
        """Check a reversal request, process it and keep it; raises DarajaError when Daraja
        would refuse it synchronously. The caller sends the Result."""
        initiator, password = self._credentials(body)
        if body.get("CommandID") != REVERSAL_COMMAND:
            raise invalid("CommandID")
        receipt = _receipt(body.get("TransactionID"))
        amount = _amount(body.get("Amount"))
        receiver = _digits(body.get("ReceiverParty"), "ReceiverParty")
        if str(body.get(RECEIVER_IDENTIFIER_FIELD, "")).strip() != RECEIVER_IDENTIFIER_ORGANISATION:
            raise invalid(RECEIVER_IDENTIFIER_FIELD)
        result_url, timeout_url = _url(body, "ResultURL"), _url(body, "QueueTimeOutURL")
        remarks, occasion = _remarks(body.get("Remarks")), _occasion(body.get("Occasion"))
        original = paid.get(receipt)
        if original is not None and original.shortcode == receiver and original.amount != amount:
            # M-Pesa reverses whole payments (README, "Refunds"); the simulator's decision.
            raise invalid("Amount")
        rng = self._rng(seed, "reversal")
        request = self._request(
            "reversal", initiator, receipt, amount, result_url, timeout_url, remarks, occasion
        )
        request.delivery = _draw(rng, faults, reversal=True)
        if not request.delivery.queue_timeout:
            code = self._reversal_code(initiator, password, original, receiver)
            self._settle(request, code, original, rng)
        self.reversals.append(request)
        return request

    def _reversal_code(
        self, initiator: str, password: str, original: SimTransaction | None, receiver: str
    ) -> str:
        checked = self._check_initiator(initiator, password)
        if checked is not None:
            return checked
        if self.forced_codes:
            return self.forced_codes.popleft()
        if original is None or original.shortcode != receiver:
            return ReversalCode.INVALID_ORIGINAL
        if original.receipt in self.reversed_by:
            return ReversalCode.ALREADY_REVERSED
        return ReversalCode.SUCCESS

    def _settle(
        self,
        request: InitiatorRequest,
        code: str,
        original: SimTransaction | None,
        rng: random.Random,
    ) -> None:
        request.result_code = code
        request.result_desc = reversal_description(code)
        now = nairobi_now()
        if code == ReversalCode.SUCCESS and original is not None:
            request.receipt = ids.mpesa_receipt(rng, now)
            request.reversed_money = True
            assert original.receipt is not None
            self.reversed_by[original.receipt] = request
            original.reversal_receipt = request.receipt
        request.result_text = reversal_result_text(request, original, self.settings, now)
        log.info(
            "reversal processed",
            transaction_id=request.transaction_id,
            result=code,
            receipt=request.receipt,
        )

    def portal_reversal(self, original: SimTransaction) -> InitiatorRequest:
        """A reversal made by hand on the M-Pesa portal: money moves, no API is told."""
        request = self._request(
            "portal", "portal", original.receipt or "", original.amount, "", "", "Portal", None
        )
        request.delivery = Delivery(copies=0)
        self._settle(request, ReversalCode.SUCCESS, original, random.Random())
        self.reversals.append(request)
        return request

    # ------------------------------------------------------------ transaction status

    def status(
        self,
        body: dict[str, Any],
        paid: dict[str, SimTransaction],
        faults: FaultProfile,
        seed: int,
    ) -> InitiatorRequest:
        initiator, password = self._credentials(body)
        command = body.get("CommandID", body.get("Command ID"))
        if command != STATUS_COMMAND:
            raise invalid("CommandID")
        receipt = _receipt(body.get("TransactionID", body.get("Transaction ID")))
        _digits(body.get("PartyA"), "PartyA")
        if str(body.get("IdentifierType", "")).strip() not in STATUS_IDENTIFIER_TYPES:
            raise invalid("IdentifierType")
        result_url, timeout_url = _url(body, "ResultURL"), _url(body, "QueueTimeOutURL")
        remarks, occasion = _remarks(body.get("Remarks")), _occasion(body.get("Occasion"))
        rng = self._rng(seed, "status")
        request = self._request(
            "status", initiator, receipt, None, result_url, timeout_url, remarks, occasion
        )
        request.delivery = _draw(rng, faults, reversal=False)
        code = self._check_initiator(initiator, password)
        reversal = next((r for r in self.reversals if r.receipt == receipt), None)
        original = paid.get(receipt)
        if code is None and original is None and reversal is None:
            code = ReversalCode.INVALID_ORIGINAL
        request.result_code = code or ReversalCode.SUCCESS
        request.result_desc = reversal_description(request.result_code)
        request.result_text = status_result_text(
            request, original, reversal, self.reversed_by, self.settings
        )
        self.status_queries.append(request)
        return request

    # ------------------------------------------------------------ shared

    def _credentials(self, body: dict[str, Any]) -> tuple[str, str]:
        initiator = body.get("Initiator")
        if not isinstance(initiator, str) or not initiator.strip() or len(initiator) > 100:
            raise invalid("Initiator")
        credential = body.get("SecurityCredential")
        if not isinstance(credential, str) or not credential.strip() or len(credential) > 4096:
            raise invalid("SecurityCredential")
        try:
            password = self.keys.decrypt(credential)
        except UnreadableCredential:
            raise invalid("SecurityCredential") from None
        return initiator, password

    def _check_initiator(self, initiator: str, password: str) -> str | None:
        """2001 for a wrong initiator or password; after `credential_lock_after` of them in a
        row the credential is locked (8006) until a reset."""
        if self.locked:
            return ReversalCode.CREDENTIAL_LOCKED
        if initiator == self.settings.initiator_name and password == (
            self.settings.initiator_password
        ):
            self.bad_attempts = 0
            return None
        self.bad_attempts += 1
        if self.bad_attempts >= self.settings.credential_lock_after:
            self.locked = True
        return ReversalCode.INITIATOR_INVALID

    def _rng(self, seed: int, kind: str) -> random.Random:
        self._sequence += 1
        return random.Random(f"{seed}:{kind}:{self._sequence}")

    @staticmethod
    def _request(
        kind: str,
        initiator: str,
        receipt: str,
        amount: int | None,
        result_url: str,
        timeout_url: str,
        remarks: str,
        occasion: str | None,
    ) -> InitiatorRequest:
        now = utc_now()
        return InitiatorRequest(
            kind=kind,
            originator_conversation_id=f"{uuid.uuid4().hex[:4]}-{uuid.uuid4().int % 10**9}-1",
            conversation_id=f"AG_{now:%Y%m%d}_{uuid.uuid4().hex[:20]}",
            initiator=initiator,
            transaction_id=receipt,
            amount=amount,
            result_url=result_url,
            timeout_url=timeout_url,
            remarks=remarks,
            occasion=occasion,
            created_at=now,
            delivery=Delivery(),
        )

    def acknowledgement(self, request: InitiatorRequest) -> Acknowledgement:
        return Acknowledgement(
            {
                "OriginatorConversationID": request.originator_conversation_id,
                "ConversationID": request.conversation_id,
                "ResponseCode": "0",
                "ResponseDescription": ACCEPTED_REQUEST_DESCRIPTION,
            },
            request.delivery.response_lost,
        )

    # ------------------------------------------------------------ delivery

    async def deliver(self, request: InitiatorRequest, late_s: float) -> None:
        delivery = request.delivery
        if delivery.queue_timeout:
            await self._post(request, request.timeout_url, timeout_text(request))
            return
        if delivery.copies == 0 or request.result_text is None:
            log.info("initiator result withheld (lost)", conversation=request.conversation_id)
            return
        await asyncio.sleep(late_s if delivery.late else self.settings.initiator_result_delay_s)
        text = request.result_text
        await asyncio.gather(
            *(self._post(request, request.result_url, text) for _ in range(delivery.copies))
        )

    async def resend(self, request: InitiatorRequest) -> None:
        if request.delivery.queue_timeout:
            await self._post(request, request.timeout_url, timeout_text(request))
        elif request.result_text is not None:
            await self._post(request, request.result_url, request.result_text)

    async def _post(self, request: InitiatorRequest, url: str, text: str) -> None:
        request.results_sent += 1
        try:
            async with self._http().post(
                url, data=text.encode(), headers=CALLBACK_HEADERS
            ) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("initiator result not delivered", url=url, error=type(exc).__name__)
            return
        request.results_answered += 1

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.callback_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _draw(rng: random.Random, faults: FaultProfile, *, reversal: bool) -> Delivery:
    """Every draw is made whatever the rates, so that a seed reproduces a run."""
    lost, duplicate, late, timeout, response_lost = (rng.random() for _ in range(5))
    if not reversal:
        return Delivery(copies=0 if lost < faults.status_result_lost else 1)
    return Delivery(
        copies=0
        if lost < faults.reversal_result_lost
        else 2
        if duplicate < faults.reversal_result_duplicate
        else 1,
        late=late < faults.reversal_result_late,
        queue_timeout=timeout < faults.reversal_queue_timeout,
        response_lost=response_lost < faults.reversal_response_lost,
    )


# ---------------------------------------------------------------- bodies


def _wire_code(code: str, settings: SimulatorSettings) -> int | str:
    """Numeric codes go out as JSON numbers (0, 2001), others as strings ("R000001"), unless
    the simulator is told to send every code as a string."""
    if settings.initiator_result_code == "number" and code.isascii() and code.isdigit():
        return int(code)
    return code


def _parameters(items: list[dict[str, Any]], settings: SimulatorSettings) -> dict[str, Any]:
    if settings.initiator_single_parameter and items:
        return {"ResultParameter": items[0]}  # one object, not a list (seen in the field)
    return {"ResultParameter": items}


def _dummy_receipt(now: datetime) -> str:
    return ids.mpesa_receipt(random.Random(0), now)[:3] + "0000000"


def reversal_result_text(
    request: InitiatorRequest,
    original: SimTransaction | None,
    settings: SimulatorSettings,
    now: datetime,
) -> str:
    code = request.result_code or ReversalCode.SUCCESS
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": _wire_code(code, settings),
        "ResultDesc": request.result_desc,
        "OriginatorConversationID": request.originator_conversation_id,
        "ConversationID": request.conversation_id,
        "TransactionID": request.receipt or _dummy_receipt(now),
    }
    if request.reversed_money and original is not None:
        items: list[dict[str, Any]] = [
            {"Key": "OriginalTransactionID", "Value": original.receipt},
            {"Key": "Amount", "Value": float(original.amount)},
            {"Key": "DebitAccountBalance", "Value": "Utility Account|KES|0.00|0.00|0.00|0.00"},
            {"Key": "TransCompletedTime", "Value": int(f"{now:%Y%m%d%H%M%S}")},
            {"Key": "Charge", "Value": 0.0},
            {"Key": "CreditPartyPublicName", "Value": f"{original.phone_number} - Customer"},
            {"Key": "DebitPartyPublicName", "Value": f"{original.shortcode} - Simulator"},
        ]
        result["ResultParameters"] = _parameters(items, settings)
    result["ReferenceData"] = {
        "ReferenceItem": {"Key": "QueueTimeoutURL", "Value": REVERSAL_QUEUE_URL}
    }
    return dumps({"Result": result})


def status_result_text(
    request: InitiatorRequest,
    original: SimTransaction | None,
    reversal: InitiatorRequest | None,
    reversed_by: dict[str, InitiatorRequest],
    settings: SimulatorSettings,
) -> str:
    now = nairobi_now()
    code = request.result_code or ReversalCode.SUCCESS
    result: dict[str, Any] = {
        "ConversationID": request.conversation_id,
        "OriginatorConversationID": request.originator_conversation_id,
        "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
        "ResultCode": _wire_code(code, settings),
        "ResultDesc": request.result_desc,
        "ResultType": 0,
        "TransactionID": _dummy_receipt(now),
    }
    if code == ReversalCode.SUCCESS:
        items = _status_items(request, original, reversal, reversed_by)
        result["ResultParameters"] = _parameters(items, settings)
    return dumps({"Result": result})


def _status_items(
    request: InitiatorRequest,
    original: SimTransaction | None,
    reversal: InitiatorRequest | None,
    reversed_by: dict[str, InitiatorRequest],
) -> list[dict[str, Any]]:
    if original is not None:
        assert original.receipt is not None
        status = STATUS_REVERSED if original.receipt in reversed_by else STATUS_COMPLETED
        amount, receipt = original.amount, original.receipt
        debit = f"{original.phone_number} - Customer"
        credit = f"{original.shortcode} - Simulator"
        reason = "Pay Bill Online"
        moment = original.transaction_date or nairobi_now()
    else:
        assert reversal is not None and reversal.receipt is not None
        status, amount, receipt = STATUS_COMPLETED, reversal.amount or 0, reversal.receipt
        debit, credit, reason = "Simulator", "Customer", "Reversal"
        moment = reversal.created_at
    stamp = int(f"{moment:%Y%m%d%H%M%S}")
    return [
        {"Key": "DebitPartyName", "Value": debit},
        {"Key": "CreditPartyName", "Value": credit},
        {"Key": "OriginatorConversationID", "Value": request.originator_conversation_id},
        {"Key": "InitiatedTime", "Value": stamp},
        {"Key": "DebitAccountType", "Value": "MMF Account For Customer"},
        {"Key": "DebitPartyCharges"},
        {"Key": "TransactionReason"},
        {"Key": "ReasonType", "Value": reason},
        {"Key": "TransactionStatus", "Value": status},
        {"Key": "FinalisedTime", "Value": stamp},
        {"Key": "Amount", "Value": str(amount)},
        {"Key": "ConversationID", "Value": request.conversation_id},
        {"Key": "ReceiptNo", "Value": receipt},
        {"Key": "DebitPartyName", "Value": debit},  # twice, as the real Result has it
    ]


def timeout_text(request: InitiatorRequest) -> str:
    return dumps(
        {
            "Result": {
                "ResultType": 1,
                "ResultCode": "1",
                "ResultDesc": QUEUE_TIMEOUT_DESCRIPTION,
                "OriginatorConversationID": request.originator_conversation_id,
                "ConversationID": request.conversation_id,
                "TransactionID": _dummy_receipt(nairobi_now()),
            }
        }
    )


# ---------------------------------------------------------------- field checks


def _receipt(value: object) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isalnum():
        raise invalid("TransactionID")
    if not 8 <= len(value) <= 12:
        raise invalid("TransactionID")
    return value.upper()


def _amount(value: object) -> int:
    if isinstance(value, bool):
        raise invalid("Amount")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.replace(".", "", 1).isdigit()):
            raise invalid("Amount")
        value = float(text)
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid("Amount")
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= AMOUNT_MAX_KES:
        raise invalid("Amount")
    return value


def _digits(value: object, name: str) -> str:
    text = (
        str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    )
    if not (text.isascii() and text.isdigit()) or not 5 <= len(text) <= 12:
        raise invalid(name)
    return text


def _url(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or len(value) > 2048 or " " in value:
        raise invalid(name)
    try:
        parts = urlsplit(value)
    except ValueError:
        raise invalid(name) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(name)
    return value


def _remarks(value: object) -> str:
    if not isinstance(value, str) or not REMARKS_MIN <= len(value.strip()) <= REMARKS_MAX:
        raise invalid("Remarks")
    return value


def _occasion(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > OCCASION_MAX:
        raise invalid("Occasion")
    return value
