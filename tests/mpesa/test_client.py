"""The gateway's Daraja client, against the real simulator served over HTTP.

The client goes through the gateway's own transport (aiohttp) to the simulator. Answers the
simulator never gives (HTML pages, Apigee faults, garbage, dropped connections) are produced by
an `httpx.MockTransport` behind the client's `Transport` protocol: it stands in for Safaricom,
not for any code of this project.
"""

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import orjson
import pytest

from pesagate.mpesa.client import (
    RAW_MAX_CHARS,
    DarajaAuthError,
    DarajaClient,
    DarajaConfig,
    PushAccepted,
    PushNotSent,
    PushRejected,
    PushResult,
    PushUnknown,
    QueryError,
    QueryFinal,
    QueryNotFound,
    QueryPending,
)
from pesagate.mpesa.protocol import (
    OAUTH_PATH,
    STK_PUSH_PATH,
    STK_QUERY_PATH,
    SUBSCRIBER_LOCKED_MESSAGE,
    TransactionType,
    stk_password,
)
from pesagate.mpesa.transport import AiohttpTransport, HttpAnswer
from pesagate.simulator import SimulatorSettings, create_simulator_app
from pesagate.simulator.settings import SANDBOX_PASSKEY
from tests.fixtures.servers import SHARED_SSL_CONTEXT, CallbackReceiver, UvicornThread, wait_until

FAST = {"delay_min_s": 0.0, "delay_max_s": 0.0, "prompt_ttl_s": 1.0, "late_callback_s": 1.5}
# Prompts that stay open for the whole test: the customer answers after 30 s.
SLOW = {"delay_min_s": 30.0, "delay_max_s": 30.0, "prompt_ttl_s": 60.0}
PAYBILL = "174379"
CALLBACK_URL = "http://127.0.0.1:9/mpesa/callback/tok"


# --- fixtures -------------------------------------------------------------------------------


@dataclass
class Sim:
    server: UvicornThread
    control_http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.control_http = httpx.Client(
            base_url=self.server.url, timeout=10, trust_env=False, verify=SHARED_SSL_CONTEXT
        )

    @property
    def url(self) -> str:
        return self.server.url

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.control_http.request(method, f"/control{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def transactions(self, **params: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", "/transactions", params=params)
        return result

    def transaction(self, checkout_request_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", f"/transactions/{checkout_request_id}")
        return result

    def wait_final(self, checkout_request_id: str) -> dict[str, Any]:
        tx: dict[str, Any] = wait_until(
            lambda: (tx := self.transaction(checkout_request_id))["state"] == "FINAL" and tx,
            timeout_s=5,
            what=f"{checkout_request_id} to be final",
        )
        return tx

    def stop(self) -> None:
        self.control_http.close()
        self.server.__exit__()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    started: list[Sim] = []

    def start(**settings: Any) -> Sim:
        app = create_simulator_app(SimulatorSettings(**{**FAST, **settings}))
        sim = Sim(UvicornThread(app).__enter__())
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


class RequestLog:
    """An aiohttp trace that records the path of every request sent."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._started)

    async def _started(self, session: Any, context: Any, params: Any) -> None:
        self.paths.append(params.url.path)

    def count(self, path: str) -> int:
        return sum(1 for p in self.paths if p.endswith(path))


def sim_config(base_url: str, **overrides: Any) -> DarajaConfig:
    fields: dict[str, Any] = {
        "base_url": base_url,
        "consumer_key": "sim-consumer-key",
        "consumer_secret": "sim-consumer-secret",
        "shortcode": PAYBILL,
        "passkey": SANDBOX_PASSKEY,
        "timeout_s": 5.0,
        **overrides,
    }
    return DarajaConfig(**fields)


def http_client(requests: RequestLog | None = None) -> AiohttpTransport:
    """The transport the gateway uses (services.py)."""
    traces = [requests.trace] if requests else None
    return AiohttpTransport(ssl_context=SHARED_SSL_CONTEXT, trace_configs=traces)


async def push(client: DarajaClient, phone: str, **overrides: Any) -> PushResult:
    fields: dict[str, Any] = {
        "phone_number": phone,
        "amount": 100,
        "account_reference": "INV-0001",
        "transaction_desc": "Test shop",
        "callback_url": CALLBACK_URL,
        **overrides,
    }
    return await client.stk_push(**fields)


# --- STK push against the simulator ---------------------------------------------------------


async def test_push_accepted_sends_exactly_the_documented_fields(
    sim: Sim, callback_receiver: CallbackReceiver
) -> None:
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        result = await push(
            client,
            "254712340001",
            amount=1500,
            account_reference="INVOICE-2026-000123",  # 19 characters: cut to 12
            transaction_desc="Payment for order 77",  # 20 characters: cut to 13
            callback_url=f"{callback_receiver.url}/mpesa/callback/tok123",
        )
    assert isinstance(result, PushAccepted)
    assert result.checkout_request_id.startswith("ws_CO_")
    assert result.merchant_request_id
    assert orjson.loads(result.raw)["CheckoutRequestID"] == result.checkout_request_id

    tx = sim.transaction(result.checkout_request_id)
    assert tx["merchant_request_id"] == result.merchant_request_id
    assert tx["business_short_code"] == PAYBILL
    assert tx["transaction_type"] == "CustomerPayBillOnline"
    assert tx["party_a"] == tx["phone_number"] == "254712340001"
    assert tx["party_b"] == PAYBILL
    assert tx["amount"] == 1500
    assert tx["account_reference"] == "INVOICE-2026"
    assert tx["transaction_desc"] == "Payment for o"
    assert tx["callback_url"].endswith("/mpesa/callback/tok123")

    callback = callback_receiver.wait_for("/mpesa/callback/tok123", timeout_s=5)[0].json()
    assert callback["Body"]["stkCallback"]["CheckoutRequestID"] == result.checkout_request_id


async def test_buy_goods_sends_the_till_as_party_b(sim: Sim) -> None:
    config = sim_config(
        sim.url,
        shortcode="174380",
        party_b="174381",
        transaction_type=TransactionType.BUY_GOODS.value,
    )
    async with http_client() as http:
        result = await push(DarajaClient(config, http), "254712340002")
    assert isinstance(result, PushAccepted)
    tx = sim.transaction(result.checkout_request_id)
    assert (tx["business_short_code"], tx["party_b"]) == ("174380", "174381")
    assert tx["transaction_type"] == "CustomerBuyGoodsOnline"
    assert sim.wait_final(result.checkout_request_id)["result_code"] == 0


async def test_empty_reference_and_description_fall_back_to_a_placeholder(sim: Sim) -> None:
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        result = await push(client, "254712340003", account_reference="", transaction_desc="  ")
    assert isinstance(result, PushAccepted)
    tx = sim.transaction(result.checkout_request_id)
    assert (tx["account_reference"], tx["transaction_desc"]) == ("Payment", "Payment")


async def test_push_rejected_synchronously_by_spike_arrest(sim: Sim) -> None:
    async with http_client() as http:
        result = await push(DarajaClient(sim_config(sim.url), http), "254700009004")
    assert isinstance(result, PushRejected)
    assert result.error_code == "500.003.02"
    assert result.error_message == "Error Occurred: Spike Arrest Violation"
    assert result.http_status == 500
    assert orjson.loads(result.raw)["errorCode"] == "500.003.02"
    assert sim.transactions(phone_number="254700009004") == []


async def test_lost_push_response_is_unknown_but_the_transaction_exists(sim: Sim) -> None:
    requests = RequestLog()
    async with http_client(requests) as http:
        result = await push(DarajaClient(sim_config(sim.url), http), "254700009005")
    assert isinstance(result, PushUnknown)
    assert result.raw is None
    # dropped, unanswered: what aiohttp raises for a closed or a reset connection
    assert result.reason.startswith(("ServerDisconnectedError", "ClientOSError"))
    assert requests.count(STK_PUSH_PATH) == 1  # never retried
    [tx] = sim.transactions(phone_number="254700009005")
    assert tx["amount"] == 100


async def test_second_push_to_an_open_prompt_is_rejected_as_subscriber_locked(
    make_sim: Callable[..., Sim],
) -> None:
    sim = make_sim(**SLOW)
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        first = await push(client, "254712340004")
        second = await push(client, "254712340004", amount=200)
    assert isinstance(first, PushAccepted)
    assert isinstance(second, PushRejected)
    assert second.error_code == "500.001.1001"
    assert second.error_message == SUBSCRIBER_LOCKED_MESSAGE
    assert second.http_status == 500
    assert len(sim.transactions(phone_number="254712340004")) == 1


# --- STK query against the simulator --------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "code", "desc"),
    [
        ("254712340010", "0", "The service request is processed successfully."),
        ("254700001032", "1032", "Request cancelled by user"),
    ],
)
async def test_query_final_result_code_is_a_string(
    sim: Sim, phone: str, code: str, desc: str
) -> None:
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        pushed = await push(client, phone)
        assert isinstance(pushed, PushAccepted)
        sim.wait_final(pushed.checkout_request_id)
        result = await client.stk_query(pushed.checkout_request_id)
    assert isinstance(result, QueryFinal)
    assert (result.result_code, result.result_desc) == (code, desc)
    assert orjson.loads(result.raw)["CheckoutRequestID"] == pushed.checkout_request_id


@pytest.mark.parametrize("shape", ["http500", "4999"])
async def test_query_pending_in_both_shapes(make_sim: Callable[..., Sim], shape: str) -> None:
    sim = make_sim(**SLOW, query_pending_shape=shape)
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        pushed = await push(client, "254712340011")
        assert isinstance(pushed, PushAccepted)
        result = await client.stk_query(pushed.checkout_request_id)
    assert isinstance(result, QueryPending)
    assert result.raw is not None
    body = orjson.loads(result.raw)
    if shape == "http500":
        assert body["errorMessage"] == "The transaction is being processed"
    else:
        assert body["ResultCode"] == "4999"
    assert sim.transaction(pushed.checkout_request_id)["queries"] == 1


async def test_query_of_an_unknown_checkout_id_is_not_found(sim: Sim) -> None:
    async with http_client() as http:
        result = await DarajaClient(sim_config(sim.url), http).stk_query(
            "ws_CO_01012026000000000712345678"
        )
    assert isinstance(result, QueryNotFound)
    assert "does not Exist" in result.raw


# --- tokens against the simulator -----------------------------------------------------------


async def test_concurrent_pushes_share_one_oauth_request(sim: Sim) -> None:
    requests = RequestLog()
    async with http_client(requests) as http:
        client = DarajaClient(sim_config(sim.url), http)
        results = await asyncio.gather(*(push(client, f"2547123402{i:02d}") for i in range(20)))
    assert all(isinstance(r, PushAccepted) for r in results)
    assert requests.count(OAUTH_PATH) == 1
    assert requests.count(STK_PUSH_PATH) == 20
    assert len(sim.transactions()) == 20


async def test_revoked_token_is_refreshed_once_and_the_push_goes_through(sim: Sim) -> None:
    requests = RequestLog()
    async with http_client(requests) as http:
        client = DarajaClient(sim_config(sim.url), http)
        first = await push(client, "254712340020")
        old_token = await client.access_token()
        assert sim.control("POST", "/tokens/revoke")["revoked"] >= 1
        second = await push(client, "254712340021")
        new_token = await client.access_token()
        assert isinstance(second, PushAccepted)
        query = await client.stk_query(second.checkout_request_id)
    assert isinstance(first, PushAccepted)
    assert new_token != old_token
    assert requests.count(OAUTH_PATH) == 2
    assert requests.count(STK_PUSH_PATH) == 3  # first, refused with the old token, retried
    assert len(sim.transactions(phone_number="254712340021")) == 1
    assert not isinstance(query, QueryError)


async def test_revoked_token_during_a_query_is_refreshed(sim: Sim) -> None:
    requests = RequestLog()
    async with http_client(requests) as http:
        client = DarajaClient(sim_config(sim.url), http)
        await client.access_token()
        sim.control("POST", "/tokens/revoke")
        result = await client.stk_query("ws_CO_01012026000000000712345678")
    assert isinstance(result, QueryNotFound)
    assert requests.count(OAUTH_PATH) == 2
    assert requests.count(STK_QUERY_PATH) == 2


@pytest.mark.parametrize("shape", ["empty", "envelope"])
async def test_bad_credentials_mean_the_push_was_not_sent(
    make_sim: Callable[..., Sim], shape: str
) -> None:
    sim = make_sim(bad_credentials_shape=shape)
    requests = RequestLog()
    async with http_client(requests) as http:
        client = DarajaClient(sim_config(sim.url, consumer_secret="wrong"), http)
        result = await push(client, "254712340030")
        query = await client.stk_query("ws_CO_01012026000000000712345678")
        with pytest.raises(DarajaAuthError) as raised:
            await client.access_token()
    assert isinstance(result, PushNotSent)
    assert "HTTP 400" in result.reason
    assert isinstance(query, QueryError)
    assert "HTTP 400" in query.reason
    assert raised.value.http_status == 400
    if shape == "envelope":
        assert "400.008.01" in raised.value.reason
    else:
        assert "empty body" in raised.value.reason
    assert "wrong" not in result.reason
    assert requests.count(STK_PUSH_PATH) == 0
    assert sim.transactions() == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_daraja_down_after_the_token_was_issued_is_unknown(
    make_sim: Callable[..., Sim],
) -> None:
    sim = make_sim()
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        await client.access_token()
        sim.stop()  # Daraja goes down: connections are now refused
        result = await push(client, "254712340040")
        query = await client.stk_query("ws_CO_01012026000000000712345678")
    assert isinstance(result, PushUnknown)
    assert result.raw is None
    assert isinstance(query, QueryError)


async def test_an_answer_dripped_byte_by_byte_ends_at_the_timeout_as_unknown() -> None:
    """A Daraja (or a proxy in front of it) that grants a token, then answers the push one
    byte at a time: the transport's total timeout ends the call; the outcome is unknown (the
    push may have reached M-Pesa) and it is not sent again."""
    pushes = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pushes
        while request_line := await reader.readline():
            headers = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *([0-9]+)", headers)
            await reader.readexactly(int(length.group(1)) if length else 0)
            if OAUTH_PATH.encode() in request_line:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(TOKEN_BODY), TOKEN_BODY)
                )
                await writer.drain()
                continue
            pushes += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                while True:
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.05)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with http_client() as http:
            client = DarajaClient(sim_config(f"http://127.0.0.1:{port}", timeout_s=0.5), http)
            # Guarded: without the transport's timeout this would wait forever.
            result = await asyncio.wait_for(push(client, "254712340042"), 30)
    finally:
        server.close()
    assert isinstance(result, PushUnknown)
    assert result.reason.startswith("TimeoutError")
    assert pushes == 1


async def test_daraja_unreachable_before_any_token_means_not_sent() -> None:
    async with http_client() as http:
        client = DarajaClient(sim_config(f"http://127.0.0.1:{closed_port()}"), http)
        result = await push(client, "254712340041")
        query = await client.stk_query("ws_CO_01012026000000000712345678")
    assert isinstance(result, PushNotSent)
    assert "Cannot connect" in result.reason
    assert isinstance(query, QueryError)


async def test_secrets_and_phone_numbers_stay_out_of_the_logs(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pesagate.mpesa")
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        accepted = await push(client, "254712340050")
        rejected = await push(client, "254700009004")
        token = await client.access_token()
        await client.stk_query("ws_CO_01012026000000000712345678")
    assert isinstance(accepted, PushAccepted)
    assert isinstance(rejected, PushRejected)
    text = caplog.text
    assert "daraja.push.accepted" in text and "daraja.push.rejected" in text
    for secret in (token, "sim-consumer-secret", SANDBOX_PASSKEY, "254712340050", "254700009004"):
        assert secret not in text
    assert "25471***0050" in text
    assert "sim-consumer-secret" not in repr(client.config)
    assert SANDBOX_PASSKEY not in repr(client.config)


# --- answers the simulator never gives: a stand-in for Safaricom -----------------------------

TOKEN_BODY = b'{"access_token": "AbCdEfGhIjKlMnOpQrStUvWxYz12", "expires_in": "3599"}'
PushHandler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class FakeDaraja:
    """Answers OAuth with a token and the API paths with scripted responses (or exceptions)."""

    def __init__(self, *answers: httpx.Response | Exception, token_body: bytes = TOKEN_BODY):
        self.answers = list(answers)
        self.token_body = token_body
        self.token_status = 200
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == OAUTH_PATH:
            return httpx.Response(self.token_status, content=self.token_body)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)


class ScriptedSafaricom:
    """The client's `Transport` over an `httpx.MockTransport` handler."""

    def __init__(self, handler: Callable[[httpx.Request], Any]) -> None:
        self._http = httpx.AsyncClient(transport=httpx.MockTransport(handler))

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        response = await self._http.request(
            method, url, headers=headers, content=body, timeout=timeout_s
        )
        return HttpAnswer(response.status_code, response.content)

    async def __aenter__(self) -> "ScriptedSafaricom":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._http.aclose()


def fake_client(fake: FakeDaraja, **config: Any) -> tuple[DarajaClient, ScriptedSafaricom]:
    http = ScriptedSafaricom(fake)
    return DarajaClient(sim_config("https://api.safaricom.co.ke", **config), http), http


def json_response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body))


HTML_503 = (
    b"<html><head><title>503 Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1></body></html>"
)
APIGEE_FAULT = {
    "fault": {
        "faultstring": "Rate limit quota violation. Quota limit exceeded.",
        "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
    }
}
ACCEPTED = {
    "MerchantRequestID": "29115-34620561-1",
    "CheckoutRequestID": "ws_CO_191220191020363925",
    "ResponseCode": "0",
    "ResponseDescription": "Success. Request accepted for processing",
    "CustomerMessage": "Success. Request accepted for processing",
}


@pytest.mark.parametrize(
    ("answer", "raw"),
    [
        (
            httpx.Response(503, content=HTML_503, headers={"Content-Type": "text/html"}),
            HTML_503.decode(),
        ),
        (httpx.Response(500, content=b""), ""),
        (json_response(500, APIGEE_FAULT), orjson.dumps(APIGEE_FAULT).decode()),
        (json_response(429, APIGEE_FAULT), None),
        (httpx.Response(200, content=b"OK"), "OK"),
        (json_response(200, ["not", "an", "object"]), None),
        (json_response(200, {"ResponseCode": "0"}), None),
        (json_response(200, {"hello": "world"}), None),
        (json_response(302, {}), None),
        (
            json_response(
                500,
                {
                    "requestId": "1",
                    "errorCode": "500.003.1001",
                    "errorMessage": "Internal Server Error",
                },
            ),
            None,
        ),
        # What aiohttp raises: its total timeout, a dropped connection, a reset.
        (TimeoutError(), None),
        (aiohttp.ServerDisconnectedError(), None),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), None),
    ],
    ids=[
        "html-503",
        "empty-500",
        "apigee-fault-500",
        "apigee-fault-429",
        "200-not-json",
        "200-json-list",
        "200-accepted-without-ids",
        "200-no-response-code",
        "redirect",
        "internal-server-error-envelope",
        "read-timeout",
        "connection-dropped",
        "connection-reset",
    ],
)
async def test_push_answers_that_leave_the_outcome_unknown(
    answer: httpx.Response | Exception, raw: str | None
) -> None:
    fake = FakeDaraja(answer)
    client, http = fake_client(fake)
    async with http:
        result = await push(client, "254712345678")
    assert isinstance(result, PushUnknown)
    if raw is not None:
        assert result.raw == raw
    assert result.reason
    assert fake.count(STK_PUSH_PATH) == 1  # never retried


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (
            json_response(
                200, {**ACCEPTED, "ResponseCode": "1", "ResponseDescription": "Rejected"}
            ),
            "1",
            "Rejected",
        ),
        (
            json_response(200, {**ACCEPTED, "ResponseCode": 17}),
            "17",
            ACCEPTED["ResponseDescription"],
        ),
        (
            json_response(
                400,
                {
                    "requestId": "x",
                    "errorCode": "400.002.02",
                    "errorMessage": "Bad Request - Invalid PhoneNumber",
                },
            ),
            "400.002.02",
            "Bad Request - Invalid PhoneNumber",
        ),
        (
            json_response(
                500,
                {"requestId": "x", "errorCode": "500.003.03", "errorMessage": "Quota Violation"},
            ),
            "500.003.03",
            "Quota Violation",
        ),
    ],
)
async def test_push_rejections_outside_the_simulator(
    answer: httpx.Response, code: str, message: str
) -> None:
    fake = FakeDaraja(answer)
    client, http = fake_client(fake)
    async with http:
        result = await push(client, "254712345678")
    assert isinstance(result, PushRejected)
    assert (result.error_code, result.error_message) == (code, message)
    assert result.http_status == answer.status_code


async def test_push_accepts_a_numeric_response_code_and_keeps_raw_bounded() -> None:
    padded = {**ACCEPTED, "ResponseCode": 0, "Padding": "x" * 10_000}
    fake = FakeDaraja(json_response(200, padded))
    client, http = fake_client(fake)
    async with http:
        result = await push(client, "254712345678")
    assert isinstance(result, PushAccepted)
    assert result.checkout_request_id == ACCEPTED["CheckoutRequestID"]
    assert len(result.raw) == RAW_MAX_CHARS


async def test_push_body_is_json_with_a_matching_nairobi_password() -> None:
    fake = FakeDaraja(json_response(200, ACCEPTED))
    client, http = fake_client(fake)
    async with http:
        await push(client, "254712345678", amount=42)
    [request] = [r for r in fake.requests if r.url.path == STK_PUSH_PATH]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer AbCdEfGhIjKlMnOpQrStUvWxYz12"
    body = orjson.loads(request.content)
    assert body["Amount"] == 42
    assert all(isinstance(v, str) for k, v in body.items() if k != "Amount")
    assert body["Password"] == stk_password(PAYBILL, SANDBOX_PASSKEY, body["Timestamp"])
    assert len(body["Timestamp"]) == 14 and body["Timestamp"].isdigit()


async def test_a_second_token_refusal_is_not_retried_again() -> None:
    refused = json_response(
        404, {"requestId": "x", "errorCode": "404.001.03", "errorMessage": "Invalid Access Token"}
    )
    fake = FakeDaraja(refused)
    client, http = fake_client(fake)
    async with http:
        result = await push(client, "254712345678")
    assert isinstance(result, PushRejected)
    assert result.error_code == "404.001.03"
    assert fake.count(STK_PUSH_PATH) == 2
    assert fake.count(OAUTH_PATH) == 2


async def test_an_apigee_401_is_a_token_refusal_and_is_retried_once() -> None:
    fault = {
        "fault": {
            "faultstring": "Invalid Access Token",
            "detail": {"errorcode": "keymanagement.service.invalid_access_token"},
        }
    }
    fake = FakeDaraja(json_response(401, fault), json_response(200, ACCEPTED))
    client, http = fake_client(fake)
    async with http:
        result = await push(client, "254712345678")
    assert isinstance(result, PushAccepted)
    assert fake.count(STK_PUSH_PATH) == 2
    assert fake.count(OAUTH_PATH) == 2


QUERY_FINAL = {
    "ResponseCode": "0",
    "ResponseDescription": "The service request has been accepted successsfully",
    "MerchantRequestID": "29115-34620561-1",
    "CheckoutRequestID": "ws_CO_191220191020363925",
}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            json_response(200, {**QUERY_FINAL, "ResultCode": 1032, "ResultDesc": "Cancelled"}),
            QueryFinal,
        ),
        (json_response(200, {**QUERY_FINAL, "ResultCode": 0, "ResultDesc": "ok"}), QueryFinal),
        (
            json_response(200, {**QUERY_FINAL, "ResultCode": "SFC_IC0003", "ResultDesc": "x"}),
            QueryFinal,
        ),
        (
            json_response(200, {**QUERY_FINAL, "ResultCode": 4999, "ResultDesc": "still"}),
            QueryPending,
        ),
        (json_response(200, QUERY_FINAL), QueryError),
        (
            json_response(
                500,
                {"requestId": "x", "errorCode": "500.003.02", "errorMessage": "System is busy."},
            ),
            QueryError,
        ),
        (
            json_response(
                500,
                {
                    "requestId": "x",
                    "errorCode": "500.001.1001",
                    "errorMessage": "Merchant does not exist",
                },
            ),
            QueryError,
        ),
        (httpx.Response(502, content=HTML_503), QueryError),
        (httpx.Response(200, content=b""), QueryError),
        (json_response(200, "a string"), QueryError),
        (aiohttp.ConnectionTimeoutError("timed out"), QueryError),
    ],
)
async def test_query_answers_outside_the_simulator(
    answer: httpx.Response | Exception, expected: type
) -> None:
    fake = FakeDaraja(answer)
    client, http = fake_client(fake)
    async with http:
        result = await client.stk_query("ws_CO_191220191020363925")
    assert isinstance(result, expected)
    if isinstance(result, QueryFinal):
        assert isinstance(answer, httpx.Response)
        assert result.result_code == str(orjson.loads(answer.content)["ResultCode"])
    assert fake.count(STK_QUERY_PATH) == 1


# --- OAuth details --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("expires_in", [b'"3599"', b"3599", b"3599.0"])
async def test_token_is_cached_and_refreshed_shortly_before_expiry(expires_in: bytes) -> None:
    fake = FakeDaraja(json_response(200, ACCEPTED))
    fake.token_body = b'{"access_token": "tok", "expires_in": ' + expires_in + b"}"
    clock = FakeClock()
    async with ScriptedSafaricom(fake) as http:
        client = DarajaClient(sim_config("https://api.safaricom.co.ke"), http, clock=clock)
        await client.access_token()
        clock.now += 3538  # 61 s before expiry: still cached
        await client.access_token()
        assert fake.count(OAUTH_PATH) == 1
        clock.now += 2  # 59 s before expiry: refreshed
        await client.access_token()
        assert fake.count(OAUTH_PATH) == 2


@pytest.mark.parametrize(
    "expires_in",
    ['"\uff13\uff15\uff19\uff19"', '"\u0663\u0665\u0669\u0669"', '"1e400"', '"-5"', "null"],
)
async def test_an_unusable_expires_in_falls_back_to_a_short_token_life(expires_in: str) -> None:
    fake = FakeDaraja(json_response(200, ACCEPTED))
    fake.token_body = b'{"access_token": "tok", "expires_in": ' + expires_in.encode() + b"}"
    clock = FakeClock()
    async with ScriptedSafaricom(fake) as http:
        client = DarajaClient(sim_config("https://api.safaricom.co.ke"), http, clock=clock)
        await client.access_token()
        clock.now += 500  # within the fallback life (600 s less its margin)
        await client.access_token()
        assert fake.count(OAUTH_PATH) == 1
        clock.now += 100  # past it: refreshed
        await client.access_token()
        assert fake.count(OAUTH_PATH) == 2


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, b"", "empty body"),
        (
            400,
            b'{"requestId":"1","errorCode":"400.008.02",'
            b'"errorMessage":"Invalid grant type passed"}',
            "400.008.02",
        ),
        (500, b"<html>oops</html>", "<html>oops</html>"),
        (200, b"not json", "without an access_token"),
        (200, b'{"expires_in": "3599"}', "without an access_token"),
        (200, b"[]", "without an access_token"),
    ],
)
async def test_oauth_failures_raise_a_readable_auth_error(
    status: int, body: bytes, reason: str
) -> None:
    fake = FakeDaraja(json_response(200, ACCEPTED), token_body=body)
    fake.token_status = status
    client, http = fake_client(fake)
    async with http:
        with pytest.raises(DarajaAuthError) as raised:
            await client.access_token()
    assert reason in raised.value.reason
    assert raised.value.http_status == status


async def test_oauth_network_error_raises_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise aiohttp.ClientOSError(111, "Connection refused")

    async with ScriptedSafaricom(handler) as http:
        client = DarajaClient(sim_config("https://api.safaricom.co.ke"), http)
        with pytest.raises(DarajaAuthError, match=r"ClientOSError.*Connection refused"):
            await client.access_token()


async def test_concurrent_callers_share_one_failed_refresh() -> None:
    oauth_requests = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal oauth_requests
        oauth_requests += 1
        await asyncio.sleep(0)  # let every other caller queue up on the refresh
        return httpx.Response(400)

    async with ScriptedSafaricom(handler) as http:
        client = DarajaClient(sim_config("https://api.safaricom.co.ke"), http)
        results = await asyncio.gather(*(push(client, f"2547123456{i:02d}") for i in range(10)))
        assert all(isinstance(r, PushNotSent) for r in results)
        assert oauth_requests == 1
        # A later caller tries again rather than inheriting an old failure.
        await push(client, "254712345699")
        assert oauth_requests == 2
