"""Daraja's Pull Transactions API: M-Pesa's statement of a shortcode.

`register` records where Safaricom would send pull notifications (nothing is ever sent), and
`query` answers the shortcode's successful payments within [StartDate, EndDate] (Nairobi time),
oldest first, a page at a time (`OffSetValue` rows skipped). A payment is on the statement from
the moment M-Pesa takes the money, whatever happened to its push response and its callbacks.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from pesagate.kit.clock import NAIROBI
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.kit.phones import is_safaricom_msisdn
from pesagate.mpesa.protocol import (
    MERCHANT_UNKNOWN_MESSAGE,
    PULL_DATE_FORMAT,
    PULL_QUERY_PATH,
    PULL_REGISTER_PATH,
    PULL_SUCCESS_CODE,
    SPIKE_ARREST_MESSAGE,
    ErrorCode,
    TransactionType,
)
from pesagate.simulator.daraja import error_response, json_object, simulator_of
from pesagate.simulator.engine import Simulator
from pesagate.simulator.state import SimTransaction
from pesagate.simulator.validation import DarajaError, invalid

router = APIRouter(tags=["Daraja"])

# Accepted date shapes: the documented one, without seconds, and ISO's "T" separator.
_DATE_FORMATS = (PULL_DATE_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")
TRANSACTION_TYPES = {
    TransactionType.PAYBILL.value: "c2b-pay-bill-debit",
    TransactionType.BUY_GOODS.value: "c2b-buy-goods-debit",
}


@dataclass(frozen=True, slots=True)
class PullQuery:
    shortcode: str
    start: datetime  # aware, Nairobi
    end: datetime
    offset: int


@router.post(PULL_REGISTER_PATH, summary="Pull Transactions: register a shortcode")
async def register(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    sim = simulator_of(request)
    try:
        sim.check_token(authorization)
        body = await json_object(request, "ShortCode")
        shortcode = _known_shortcode(sim, body.get("ShortCode"))
        registration = _registration(body)
    except DarajaError as error:
        return error_response(error)
    sim.pull_registrations[shortcode] = registration
    return JSONBytesResponse(
        {
            "ResponseRefID": _ref_id(),
            "ResponseStatus": PULL_SUCCESS_CODE,
            "ShortCode": shortcode,
            "ResponseDescription": "Success",
        }
    )


@router.post(PULL_QUERY_PATH, summary="Pull Transactions: the shortcode's statement")
async def query(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    sim = simulator_of(request)
    try:
        sim.check_token(authorization)
        pull = parse_pull_query(sim, await json_object(request, "ShortCode"))
        if random.random() < sim.faults.statement_error:  # unseeded: pushes keep their fates
            raise DarajaError(500, ErrorCode.SPIKE_ARREST, SPIKE_ARREST_MESSAGE)
    except DarajaError as error:
        return error_response(error)
    size = sim.settings.statement_page_size
    page = statement(sim, pull)[pull.offset : pull.offset + size]
    lines = [statement_line(tx, sim.settings.organization_name) for tx in page]
    return JSONBytesResponse(
        {
            "ResponseRefID": _ref_id(),
            "ResponseCode": PULL_SUCCESS_CODE,
            "ResponseMessage": "Success",
            "Response": [lines],  # a list inside a list, as the real service answers
        }
    )


def parse_pull_query(sim: Simulator, body: dict[str, Any]) -> PullQuery:
    """Validate in Daraja's manner: the first bad field is the one reported."""
    shortcode = _known_shortcode(sim, body.get("ShortCode"))
    start = _date(body.get("StartDate"), "StartDate")
    end = _date(body.get("EndDate"), "EndDate")
    if end < start:
        raise invalid("EndDate")
    return PullQuery(shortcode, start, end, _offset(body.get("OffSetValue", "0")))


def statement(sim: Simulator, pull: PullQuery) -> list[SimTransaction]:
    """The shortcode's successful payments within the window, oldest first."""
    lines = [
        tx
        for tx in sim.paid
        if tx.shortcode == pull.shortcode
        and tx.transaction_date is not None
        and pull.start <= tx.transaction_date <= pull.end
    ]
    lines.sort(key=lambda tx: (tx.transaction_date, tx.checkout_request_id))
    return lines


def statement_line(tx: SimTransaction, organization: str) -> dict[str, Any]:
    assert tx.transaction_date is not None
    trx_date = tx.transaction_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "transactionId": tx.receipt,
        "trxDate": trx_date,
        "msisdn": int(tx.phone_number),
        "sender": "UNKNOWN",
        "transactiontype": TRANSACTION_TYPES.get(tx.transaction_type, "c2b-pay-bill-debit"),
        "billreference": tx.account_reference,
        "amount": f"{tx.amount:.1f}",
        "organizationname": organization,
    }


def _known_shortcode(sim: Simulator, value: object) -> str:
    """A paybill, or a buy-goods store (its till number names the same statement)."""
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if not (text.isascii() and text.isdigit()) or not 5 <= len(text) <= 7:
        raise invalid("ShortCode")
    settings = sim.settings
    if text == settings.till_number:
        return settings.buygoods_shortcode
    if text not in (settings.paybill_shortcode, settings.buygoods_shortcode):
        raise DarajaError(500, ErrorCode.MERCHANT_OR_SUBSCRIBER, MERCHANT_UNKNOWN_MESSAGE)
    return text


def _registration(body: dict[str, Any]) -> dict[str, str]:
    if body.get("RequestType") != "Pull":
        raise invalid("RequestType")
    nominated = str(body.get("NominatedNumber", "")).strip()
    if nominated.startswith("0"):
        nominated = "254" + nominated[1:]  # documented as 07XXXXXXXX; 2547... works too
    if not is_safaricom_msisdn(nominated):
        raise invalid("NominatedNumber")
    callback_url = body.get("CallBackURL")
    if not isinstance(callback_url, str) or not callback_url.startswith(("http://", "https://")):
        raise invalid("CallBackURL")
    return {"nominated_number": nominated, "callback_url": callback_url}


def _date(value: object, field: str) -> datetime:
    if isinstance(value, str) and value.isascii():  # strptime's %d takes any script's digits
        for date_format in _DATE_FORMATS:
            try:
                return datetime.strptime(value.strip(), date_format).replace(tzinfo=NAIROBI)
            except ValueError:
                continue
    raise invalid(field)


def _offset(value: object) -> int:
    if isinstance(value, bool):
        raise invalid("OffSetValue")
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise invalid("OffSetValue")
    return int(text)


def _ref_id() -> str:
    return str(uuid.uuid4())
