"""Pull Transactions (M-Pesa's statement of a shortcode): request bodies, tolerant parsing of
the answers, and the walk over its pages.

The statement settles payments whose push response and callbacks were all lost: the push sent
`AccountReference` = the invoice id, and the statement echoes it as `billreference`. Parsing is
defensive (DARAJA.md's rule): rows come nested (`[[...]]`, the documented shape) or flat, the
amount as a string or a number, the MSISDN as a number, a string or masked; a row that cannot be
read is skipped, and an answer that cannot be read is a `StatementError`, never an empty
statement.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from pesagate.kit.clock import NAIROBI
from pesagate.kit.money import AmountError, parse_amount_to_minor
from pesagate.kit.phones import to_safaricom_msisdn
from pesagate.mpesa.protocol import PULL_DATE_FORMAT, PULL_SUCCESS_CODE, TIMESTAMP_FORMAT

MAX_PAGES: Final = 50
# Answers that mean "nothing in this window" although they are not ResponseCode 1000.
_EMPTY_HINTS: Final = ("no record", "no transaction", "not found")


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One payment into the shortcode."""

    receipt: str  # transactionId: the M-Pesa receipt number
    bill_reference: str | None  # billreference: the push's AccountReference
    amount_minor: int  # cents
    msisdn: str | None  # 2547XXXXXXXX; None when absent or masked
    transaction_time: datetime | None  # aware; None when absent or unreadable
    transaction_type: str | None = None  # c2b-pay-bill-debit, c2b-buy-goods-debit, ...


@dataclass(frozen=True, slots=True)
class Statement:
    """Every line of the window that could be read. `complete` is False when the walk stopped
    before the last page (the page cap, or a service that repeats a page): then a payment
    missing from `lines` may still exist."""

    lines: tuple[StatementLine, ...]
    pages: int
    complete: bool = True


@dataclass(frozen=True, slots=True)
class StatementError:
    """No statement: network error, no token, an error envelope, an unreadable answer. This
    says nothing about whether anybody paid."""

    reason: str
    raw: str | None = None


StatementResult = Statement | StatementError


@dataclass(frozen=True, slots=True)
class Page:
    rows: int  # rows the service sent, readable or not (paging counts them)
    lines: list[StatementLine]


def query_payload(shortcode: str, start: datetime, end: datetime, offset: int) -> bytes:
    """The query body; dates in Nairobi time (a naive datetime is taken as UTC)."""
    return orjson.dumps(
        {
            "ShortCode": shortcode,
            "StartDate": _nairobi_text(start),
            "EndDate": _nairobi_text(end),
            "OffSetValue": str(offset),
        }
    )


@dataclass
class StatementWalk:
    """Which offset to ask for next, and when to stop: at an empty page, at a page shorter
    than an earlier one, at a page with nothing new (complete=False), or at `max_pages`."""

    max_pages: int = MAX_PAGES
    offset: int = 0
    pages: int = 0
    done: bool = False
    complete: bool = True
    _largest: int = 0
    _lines: dict[str, StatementLine] = field(default_factory=dict)

    def add(self, page: Page) -> None:
        self.pages += 1
        new = [line for line in page.lines if line.receipt not in self._lines]
        self._lines.update((line.receipt, line) for line in new)
        if page.rows == 0 or page.rows < self._largest:
            self.done = True
        elif page.lines and not new:
            self.done, self.complete = True, False  # the service ignores OffSetValue
        elif self.pages >= self.max_pages:
            self.done, self.complete = True, False
        self._largest = max(self._largest, page.rows)
        self.offset += page.rows

    def result(self) -> Statement:
        return Statement(tuple(self._lines.values()), self.pages, self.complete)


def parse_page(status: int, body: Any, raw: str) -> Page | StatementError:
    """One answer of the query endpoint: its rows, or why it is not a statement page."""
    if isinstance(body, dict) and body.get("errorCode") is not None:
        message = body.get("errorMessage")
        reason = f"HTTP {status} {body['errorCode']} {message if isinstance(message, str) else ''}"
        return StatementError(reason.rstrip(), raw)
    if not 200 <= status < 300:
        return StatementError(f"HTTP {status} without an error envelope", raw)
    if not isinstance(body, dict):
        what = "a non-JSON body" if body is None else "JSON that is not an object"
        return StatementError(f"HTTP {status} with {what}", raw)
    code = _text(body.get("ResponseCode"))
    if code not in (PULL_SUCCESS_CODE, "0", None) or (code is None and "Response" not in body):
        return _unsuccessful(code, body, raw)
    rows = _rows(body.get("Response"))
    return Page(len(rows), [line for row in rows if (line := parse_line(row)) is not None])


def _unsuccessful(code: str | None, body: dict[str, Any], raw: str) -> Page | StatementError:
    message = _text(body.get("ResponseMessage") or body.get("ResponseDescription")) or ""
    if any(hint in message.casefold() for hint in _EMPTY_HINTS):
        return Page(0, [])
    return StatementError(f"ResponseCode {code} {message}".rstrip(), raw)


def _rows(response: Any) -> list[Any]:
    """`[[row, ...]]` (documented), `[row, ...]`, or nothing at all."""
    if not isinstance(response, list):
        return []
    rows: list[Any] = []
    for item in response:
        rows.extend(item if isinstance(item, list) else [item])
    return rows


def parse_line(row: Any) -> StatementLine | None:
    """A row with a receipt and a positive amount in whole cents; None otherwise."""
    if not isinstance(row, dict):
        return None
    fields = {str(key).casefold(): value for key, value in row.items()}
    receipt = _text(fields.get("transactionid"))
    amount_minor = _cents(fields.get("amount"))
    if receipt is None or amount_minor is None:
        return None
    return StatementLine(
        receipt=receipt,
        bill_reference=_text(fields.get("billreference")),
        amount_minor=amount_minor,
        msisdn=_msisdn(fields.get("msisdn")),
        transaction_time=_moment(fields.get("trxdate")),
        transaction_type=_text(fields.get("transactiontype")),
    )


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\x00", "").strip() or None


def _cents(value: Any) -> int | None:
    if isinstance(value, str):
        value = value.replace(",", "").strip()  # "1,500.00"
    try:
        return parse_amount_to_minor(value)
    except AmountError:
        return None


def _msisdn(value: Any) -> str | None:
    """A full Safaricom number (`2547…`, `07…`, `+2547…`), or None (absent, masked, foreign)."""
    text = _text(value)
    return None if text is None else to_safaricom_msisdn(text)


def _moment(value: Any) -> datetime | None:
    """ISO 8601 (`Z`, an offset, or naive = Nairobi), or a `YYYYMMDDHHmmss` number."""
    text = _text(value)
    if text is None:
        return None
    try:
        if text.isascii() and text.isdigit():
            moment = datetime.strptime(text, TIMESTAMP_FORMAT)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=NAIROBI)


def _nairobi_text(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(NAIROBI).strftime(PULL_DATE_FORMAT)


__all__ = [
    "MAX_PAGES",
    "Page",
    "Statement",
    "StatementError",
    "StatementLine",
    "StatementResult",
    "StatementWalk",
    "parse_line",
    "parse_page",
    "query_payload",
]
