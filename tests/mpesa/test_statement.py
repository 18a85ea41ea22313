"""`DarajaClient.pull_transactions`: M-Pesa's statement, against the real simulator over HTTP,
and every answer shape the simulator never gives through a stand-in for Safaricom."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import orjson
import pytest

from pesagate.kit.clock import NAIROBI
from pesagate.mpesa.client import DarajaClient, PushUnknown
from pesagate.mpesa.protocol import OAUTH_PATH, PULL_QUERY_PATH
from pesagate.mpesa.statement import Statement, StatementError, StatementLine
from tests.mpesa.test_client import (
    FakeDaraja,
    RequestLog,
    Sim,
    fake_client,
    http_client,
    json_response,
    make_sim,
    push,
    sim,
    sim_config,
)

__all__ = ["make_sim", "sim"]  # fixtures shared with test_client.py


def around_now(before_s: float = 600, after_s: float = 60) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(seconds=before_s), now + timedelta(seconds=after_s)


async def pay_silently(client: DarajaClient, sim: Sim, phone: str, amount: int, ref: str) -> str:
    """A payment whose push response and callback are both lost; returns its receipt."""
    sim.control("POST", f"/customers/{phone}", json={"response_lost": True, "callback_lost": True})
    result = await push(client, phone, amount=amount, account_reference=ref)
    assert isinstance(result, PushUnknown)
    [truth] = sim.transactions(phone_number=phone)
    receipt: str = sim.wait_final(truth["checkout_request_id"])["receipt"]
    return receipt


# --- against the simulator ------------------------------------------------------------------


async def test_the_statement_shows_a_payment_nobody_was_told_about(sim: Sim) -> None:
    requests = RequestLog()
    async with http_client(requests) as http:
        client = DarajaClient(sim_config(sim.url), http)
        receipt = await pay_silently(client, sim, "254712360001", 1500, "INVPULL001")
        statement = await client.pull_transactions(*around_now())
    assert isinstance(statement, Statement)
    [line] = statement.lines
    assert line.receipt == receipt
    assert line.bill_reference == "INVPULL001"
    assert line.amount_minor == 150_000
    assert line.msisdn == "254712360001"
    assert line.transaction_type == "c2b-pay-bill-debit"
    assert line.transaction_time is not None
    assert abs(line.transaction_time - datetime.now(UTC)) < timedelta(minutes=1)
    assert statement.complete and statement.pages == 2  # one line, then an empty page
    assert requests.count(PULL_QUERY_PATH) == 2


async def test_pages_are_followed_until_a_short_page(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(statement_page_size=2)
    requests = RequestLog()
    async with http_client(requests) as http:
        client = DarajaClient(sim_config(sim.url), http)
        receipts = [
            await pay_silently(client, sim, f"25471236001{n}", 10 + n, f"INVPAGE{n}")
            for n in range(5)
        ]
        statement = await client.pull_transactions(*around_now())
        capped = await client.pull_transactions(*around_now(), max_pages=2)
    assert isinstance(statement, Statement) and isinstance(capped, Statement)
    assert [line.receipt for line in statement.lines] == receipts  # oldest first
    assert [line.amount_minor for line in statement.lines] == [1000, 1100, 1200, 1300, 1400]
    assert (statement.pages, statement.complete) == (3, True)  # 2 + 2 + 1
    assert [line.receipt for line in capped.lines] == receipts[:4]
    assert (capped.pages, capped.complete) == (2, False)  # more may exist: not a full answer
    assert requests.count(PULL_QUERY_PATH) == 5


async def test_a_window_before_the_payment_is_an_empty_complete_statement(sim: Sim) -> None:
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        await pay_silently(client, sim, "254712360020", 10, "INVEARLY")
        now = datetime.now(UTC)
        statement = await client.pull_transactions(
            now - timedelta(hours=2), now - timedelta(hours=1)
        )
    assert statement == Statement((), pages=1, complete=True)


async def test_a_revoked_token_is_refreshed_once_for_a_pull(sim: Sim) -> None:
    requests = RequestLog()
    async with http_client(requests) as http:
        client = DarajaClient(sim_config(sim.url), http)
        await client.access_token()
        sim.control("POST", "/tokens/revoke")
        statement = await client.pull_transactions(*around_now())
    assert isinstance(statement, Statement) and statement.lines == ()
    assert requests.count(OAUTH_PATH) == 2
    assert requests.count(PULL_QUERY_PATH) == 2  # refused once, then answered


async def test_an_unreachable_daraja_is_an_error_not_an_empty_statement() -> None:
    async with http_client() as http:
        client = DarajaClient(sim_config("http://127.0.0.1:9"), http)
        statement = await client.pull_transactions(*around_now())
    assert isinstance(statement, StatementError)
    assert "no access token" in statement.reason


# --- answers the simulator never gives ------------------------------------------------------

ROW = {
    "transactionId": "UKS1A2B3C4",
    "trxDate": "2026-11-28T10:13:00Z",
    "msisdn": 254712345678,
    "sender": "UNKNOWN",
    "transactiontype": "c2b-pay-bill-debit",
    "billreference": "GQ7KZ2XPNM",
    "amount": "1500.0",
    "organizationname": "Shop",
}


def statement_answer(response: Any, **fields: Any) -> httpx.Response:
    body = {"ResponseRefID": "x", "ResponseCode": "1000", "ResponseMessage": "Success"}
    return json_response(200, {**body, "Response": response, **fields})


EMPTY = statement_answer([[]])


async def pull_fake(*answers: httpx.Response | Exception) -> tuple[Any, FakeDaraja]:
    fake = FakeDaraja(*answers)
    client, http = fake_client(fake)
    async with http:
        result = await client.pull_transactions(*around_now())
    return result, fake


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({}, {}),
        ({"amount": 1500}, {}),
        ({"amount": 1500.0}, {}),
        ({"amount": "1,500.00"}, {}),
        ({"amount": "1500.5"}, {"amount_minor": 150_050}),
        ({"msisdn": "254712345678"}, {}),
        ({"msisdn": "0712345678"}, {}),
        ({"msisdn": "+254712345678"}, {}),
        ({"msisdn": "2547******78"}, {"msisdn": None}),
        ({"msisdn": "*********678"}, {"msisdn": None}),
        ({"msisdn": None}, {"msisdn": None}),
        ({"billreference": None}, {"bill_reference": None}),
        ({"billreference": " GQ7KZ2XPNM "}, {}),
        ({"billreference": 12345}, {"bill_reference": "12345"}),
        ({"trxDate": "2026-11-28T13:13:00+03:00"}, {}),
        ({"trxDate": "2026-11-28 13:13:00"}, {}),  # naive: Nairobi
        ({"trxDate": 20261128131300}, {}),
        ({"trxDate": "yesterday"}, {"transaction_time": None}),
        ({"TransactionID": "UKS1A2B3C4", "transactionId": None}, {}),  # key case
    ],
)
async def test_lines_are_read_whatever_their_field_shapes(
    row: dict[str, Any], expected: dict[str, Any]
) -> None:
    fields = {**ROW, **row}
    line = {
        "receipt": "UKS1A2B3C4",
        "bill_reference": "GQ7KZ2XPNM",
        "amount_minor": 150_000,
        "msisdn": "254712345678",
        "transaction_time": datetime(2026, 11, 28, 10, 13, tzinfo=UTC),
        "transaction_type": "c2b-pay-bill-debit",
        **expected,
    }
    result, _ = await pull_fake(statement_answer([[fields]]), EMPTY)
    assert isinstance(result, Statement)
    assert result.lines == (StatementLine(**line),)


async def test_flat_and_nested_rows_and_unreadable_rows() -> None:
    rows = [
        ROW,
        [{**ROW, "transactionId": "UKS1A2B3C5"}],
        {**ROW, "transactionId": None},  # no receipt: skipped
        {**ROW, "transactionId": "UKS1A2B3C6", "amount": "abc"},  # no amount: skipped
        {**ROW, "transactionId": "UKS1A2B3C7", "amount": "-10"},
        "garbage",
        {**ROW, "transactionId": "UKS1A2B3C8", "trxDate": "2026-11-28T10:14:00Z"},
    ]
    result, fake = await pull_fake(statement_answer(rows), EMPTY)
    assert isinstance(result, Statement)
    assert [line.receipt for line in result.lines] == ["UKS1A2B3C4", "UKS1A2B3C5", "UKS1A2B3C8"]
    assert fake.count(PULL_QUERY_PATH) == 2
    [_, second] = [r for r in fake.requests if r.url.path == PULL_QUERY_PATH]
    assert orjson.loads(second.content)["OffSetValue"] == "7"  # unreadable rows count too


@pytest.mark.parametrize(
    "answer",
    [
        statement_answer([[]]),
        statement_answer([]),
        statement_answer(None),
        json_response(200, {"ResponseCode": "1000", "ResponseMessage": "Success"}),
        json_response(200, {"ResponseCode": "1001", "ResponseMessage": "No records found"}),
        json_response(200, {"Response": [[]]}),
    ],
    ids=["nested-empty", "flat-empty", "null", "no-response-field", "no-records", "no-code"],
)
async def test_empty_statements(answer: httpx.Response) -> None:
    result, fake = await pull_fake(answer)
    assert result == Statement((), pages=1, complete=True)
    assert fake.count(PULL_QUERY_PATH) == 1


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            json_response(
                400,
                {
                    "requestId": "1",
                    "errorCode": "400.002.02",
                    "errorMessage": "Bad Request - Invalid ShortCode",
                },
            ),
            "400.002.02 Bad Request - Invalid ShortCode",
        ),
        (
            json_response(
                500,
                {"requestId": "1", "errorCode": "500.003.02", "errorMessage": "System is busy."},
            ),
            "500.003.02",
        ),
        (httpx.Response(503, content=b"<html>down</html>"), "HTTP 503 without an error envelope"),
        (httpx.Response(200, content=b"OK"), "non-JSON"),
        (httpx.Response(200, content=b""), "non-JSON"),
        (json_response(200, [ROW]), "not an object"),
        (json_response(200, {"hello": "world"}), "ResponseCode None"),
        (
            json_response(200, {"ResponseCode": "1001", "ResponseMessage": "Invalid shortcode"}),
            "ResponseCode 1001 Invalid shortcode",
        ),
        (aiohttp.ClientOSError(111, "Connection refused"), "Connection refused"),
        (TimeoutError(), "TimeoutError"),
    ],
)
async def test_unreadable_answers_are_errors(
    answer: httpx.Response | Exception, reason: str
) -> None:
    result, fake = await pull_fake(answer)
    assert isinstance(result, StatementError)
    assert reason in result.reason
    assert fake.count(PULL_QUERY_PATH) == 1  # never retried


async def test_an_error_on_a_later_page_is_an_error() -> None:
    page = [{**ROW, "transactionId": f"UKS1A2B3D{n}"} for n in range(3)]
    result, fake = await pull_fake(statement_answer([page]), httpx.Response(502, content=b""))
    assert isinstance(result, StatementError)
    assert fake.count(PULL_QUERY_PATH) == 2


async def test_a_service_that_ignores_the_offset_gives_an_incomplete_statement() -> None:
    page = [{**ROW, "transactionId": f"UKS1A2B3E{n}"} for n in range(3)]
    result, fake = await pull_fake(statement_answer([page]))  # the same page, every time
    assert isinstance(result, Statement)
    assert len(result.lines) == 3 and not result.complete
    assert fake.count(PULL_QUERY_PATH) == 2


async def test_the_query_body_pages_with_nairobi_dates() -> None:
    full = [{**ROW, "transactionId": f"UKS1A2B3F{n}"} for n in range(2)]
    fake = FakeDaraja(statement_answer([full]), statement_answer([[ROW]]))
    client, http = fake_client(fake)
    start = datetime(2026, 11, 28, 5, 36, 0, tzinfo=UTC)
    async with http:
        result = await client.pull_transactions(start, start + timedelta(hours=1, minutes=34))
    assert isinstance(result, Statement) and len(result.lines) == 3
    bodies = [orjson.loads(r.content) for r in fake.requests if r.url.path == PULL_QUERY_PATH]
    assert bodies == [
        {
            "ShortCode": "174379",
            "StartDate": "2026-11-28 08:36:00",
            "EndDate": "2026-11-28 10:10:00",
            "OffSetValue": offset,
        }
        for offset in ("0", "2")
    ]
    assert start == datetime(2026, 11, 28, 8, 36, tzinfo=NAIROBI)  # what was asked for
