"""Reversal and Transaction Status: the gateway's client against the real simulator over HTTP,
Results received by an independent HTTP server, and the tolerant Result parser."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pesagate.mpesa.client import (
    DarajaClient,
    PushAccepted,
    RequestAccepted,
    RequestNotSent,
    RequestRejected,
    RequestUnknown,
)
from pesagate.mpesa.protocol import REVERSAL_PATH, SANDBOX_CERTIFICATE_PATH
from pesagate.mpesa.reversal import amount_minor, parse_result, status_report
from pesagate.mpesa.security import load_public_key, security_credential
from pesagate.simulator.security import SimulatorKeys
from tests.fixtures.servers import CallbackReceiver, wait_until
from tests.mpesa.test_client import Sim, http_client, make_sim, push, sim, sim_config

__all__ = ["make_sim", "sim"]  # fixtures shared with test_client.py

RESULT, TIMEOUT = "/reversal/result", "/reversal/timeout"


@pytest.fixture
async def client(sim: Sim) -> AsyncIterator[DarajaClient]:
    async with http_client() as http:
        yield DarajaClient(initiator_config(sim.url), http)


def initiator_config(url: str, **overrides: Any) -> Any:
    fields = {"initiator": "testapi", "initiator_password": "Safaricom999!*!", **overrides}
    return sim_config(url, **fields)


async def paid_receipt(client: DarajaClient, sim: Sim, phone: str, amount: int = 100) -> str:
    pushed = await push(client, phone, amount=amount)
    assert isinstance(pushed, PushAccepted)
    tx = sim.wait_final(pushed.checkout_request_id)
    assert tx["result_code"] == 0
    receipt: str = tx["receipt"]
    return receipt


async def reverse(
    client: DarajaClient, receiver: CallbackReceiver, receipt: str, amount: int = 100
) -> Any:
    return await client.reverse(
        receipt=receipt,
        amount=amount,
        result_url=receiver.url + RESULT,
        timeout_url=receiver.url + TIMEOUT,
        remarks="Refund of order 77",
    )


def result_at(receiver: CallbackReceiver, path: str = RESULT, count: int = 1) -> Any:
    found = receiver.wait_for(path, count, timeout_s=10)
    parsed = parse_result(found[-1].body)
    assert parsed is not None
    return parsed


# --- the credential ---------------------------------------------------------------------------


def test_credential_decrypts_with_the_simulator_key_and_differs_each_time() -> None:
    keys = SimulatorKeys()
    key = load_public_key(keys.certificate_pem)
    first, second = security_credential("s3cret!", key), security_credential("s3cret!", key)
    assert first != second  # PKCS#1 v1.5 is randomised: compare by decrypting
    assert len(first) == 344  # a 2048-bit key, base64
    assert keys.decrypt(first) == keys.decrypt(second) == "s3cret!"


async def test_simulator_serves_its_certificate(sim: Sim) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(sim.url + SANDBOX_CERTIFICATE_PATH)
    assert response.status_code == 200
    load_public_key(response.content)


# --- reversal ---------------------------------------------------------------------------------


async def test_reversal_gives_the_payment_back_once(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver
) -> None:
    receipt = await paid_receipt(client, sim, "254712350001", amount=250)
    answer = await reverse(client, callback_receiver, receipt, amount=250)
    assert isinstance(answer, RequestAccepted)
    assert answer.conversation_id.startswith("AG_")

    result = result_at(callback_receiver)
    assert result.succeeded and result.result_code == "0"
    assert result.conversation_id == answer.conversation_id
    assert result.text("OriginalTransactionID") == receipt
    assert amount_minor(result.param("Amount")) == 25_000
    reversals = sim.control("GET", "/reversals")
    assert len(reversals) == 1
    assert reversals[0]["reversed"] is True
    assert reversals[0]["receipt"] == result.transaction_id != receipt
    assert reversals[0]["initiator"] == "testapi"

    again = await reverse(client, callback_receiver, receipt, amount=250)
    assert isinstance(again, RequestAccepted)
    second = result_at(callback_receiver, count=2)
    assert second.result_code == "R000001"
    assert [r["reversed"] for r in sim.control("GET", "/reversals")] == [True, False]


async def test_a_partial_amount_is_refused(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver
) -> None:
    receipt = await paid_receipt(client, sim, "254712350002", amount=300)
    answer = await reverse(client, callback_receiver, receipt, amount=100)
    assert isinstance(answer, RequestRejected)
    assert (answer.error_code, answer.error_message) == (
        "400.002.02",
        "Bad Request - Invalid Amount",
    )
    assert sim.control("GET", "/reversals") == []


async def test_unknown_receipt_is_r000002(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver
) -> None:
    assert isinstance(await reverse(client, callback_receiver, "UAB0000000"), RequestAccepted)
    result = result_at(callback_receiver)
    assert result.result_code == "R000002"
    assert result.parameters == ()


async def test_portal_reversal_makes_the_api_answer_r000001(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver
) -> None:
    pushed = await push(client, "254712350003")
    assert isinstance(pushed, PushAccepted)
    receipt = sim.wait_final(pushed.checkout_request_id)["receipt"]
    sim.control("POST", f"/transactions/{pushed.checkout_request_id}/reverse")
    await reverse(client, callback_receiver, receipt)
    assert result_at(callback_receiver).result_code == "R000001"


async def test_wrong_password_is_2001_then_the_credential_locks(
    sim: Sim, callback_receiver: CallbackReceiver
) -> None:
    async with http_client() as http:
        good = DarajaClient(initiator_config(sim.url), http)
        bad = DarajaClient(initiator_config(sim.url, initiator_password="wrong"), http)
        receipt = await paid_receipt(good, sim, "254712350004")
        for count in (1, 2, 3):
            await reverse(bad, callback_receiver, receipt)
            assert result_at(callback_receiver, count=count).result_code == "2001"
        await reverse(good, callback_receiver, receipt)  # right password, too late
        assert result_at(callback_receiver, count=4).result_code == "8006"
    assert not any(r["reversed"] for r in sim.control("GET", "/reversals"))


@pytest.mark.parametrize("code", ["1", "11", "21", "2006", "2028", "R000002"])
async def test_scripted_failures_move_no_money(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver, code: str
) -> None:
    receipt = await paid_receipt(client, sim, "254712350005")
    sim.control("POST", "/reversals/next-results", json={"codes": [code]})
    await reverse(client, callback_receiver, receipt)
    result = result_at(callback_receiver)
    assert result.result_code == code
    assert result.result_desc
    assert sim.control("GET", "/reversals")[0]["reversed"] is False


async def test_a_garbled_credential_is_refused_synchronously(
    sim: Sim, client: DarajaClient
) -> None:
    token = await client.access_token()
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            sim.url + REVERSAL_PATH,
            headers={"Authorization": f"Bearer {token}"},
            json={"Initiator": "testapi", "SecurityCredential": "not base64!"},
        )
    assert response.status_code == 400
    assert response.json()["errorCode"] == "400.002.02"
    assert response.json()["errorMessage"] == "Bad Request - Invalid SecurityCredential"


async def test_no_initiator_sends_nothing(sim: Sim) -> None:
    async with http_client() as http:
        client = DarajaClient(sim_config(sim.url), http)
        answer = await client.reverse(
            receipt="UAB0000000",
            amount=1,
            result_url="http://x/",
            timeout_url="http://x/",
            remarks="Refund",
        )
    assert isinstance(answer, RequestNotSent)
    assert sim.control("GET", "/reversals") == []


# --- faults -----------------------------------------------------------------------------------


async def test_lost_acknowledgement_still_reverses(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver
) -> None:
    receipt = await paid_receipt(client, sim, "254712350006")
    sim.control("POST", "/faults", json={"reversal_response_lost": 1.0})
    answer = await reverse(client, callback_receiver, receipt)
    assert isinstance(answer, RequestUnknown)
    assert result_at(callback_receiver).succeeded
    assert sim.control("GET", "/reversals")[0]["reversed"] is True


async def test_duplicated_and_lost_results(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver
) -> None:
    first = await paid_receipt(client, sim, "254712350007")
    second = await paid_receipt(client, sim, "254712350008")
    sim.control("POST", "/faults", json={"reversal_result_duplicate": 1.0})
    await reverse(client, callback_receiver, first)
    copies = callback_receiver.wait_for(RESULT, 2, timeout_s=10)
    assert copies[0].body == copies[1].body
    sim.control("POST", "/faults", json={"reversal_result_lost": 1.0})
    await reverse(client, callback_receiver, second)
    reversals = wait_until(
        lambda: len(sim.control("GET", "/reversals")) == 2 and sim.control("GET", "/reversals")
    )
    assert reversals[1]["reversed"] is True and reversals[1]["results_sent"] == 0


async def test_queue_timeout_processes_nothing(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver
) -> None:
    receipt = await paid_receipt(client, sim, "254712350009")
    sim.control("POST", "/faults", json={"reversal_queue_timeout": 1.0})
    await reverse(client, callback_receiver, receipt)
    notice = result_at(callback_receiver, TIMEOUT)
    assert notice.result_type == "1"
    assert notice.result_desc == "The service request timed out."
    assert sim.control("GET", "/reversals")[0]["reversed"] is False


# --- Transaction Status -----------------------------------------------------------------------


async def test_status_tells_a_reversed_payment_from_a_completed_one(
    sim: Sim, client: DarajaClient, callback_receiver: CallbackReceiver
) -> None:
    receipt = await paid_receipt(client, sim, "254712350010", amount=120)

    async def status(count: int) -> Any:
        answer = await client.transaction_status(
            receipt=receipt,
            result_url=callback_receiver.url + "/status",
            timeout_url=callback_receiver.url + "/status-timeout",
            remarks="Reconciliation",
        )
        assert isinstance(answer, RequestAccepted)
        return status_report(result_at(callback_receiver, "/status", count))

    before = await status(1)
    assert (before.status, before.receipt, before.amount_minor) == ("Completed", receipt, 12_000)
    await reverse(client, callback_receiver, receipt, amount=120)
    result_at(callback_receiver)
    after = await status(2)
    assert (after.status, after.receipt) == ("Reversed", receipt)
    queries = sim.control("GET", "/status-queries")
    assert [q["transaction_id"] for q in queries] == [receipt, receipt]


async def test_status_result_shapes_still_parse(
    make_sim: Any, callback_receiver: CallbackReceiver
) -> None:
    sim = make_sim(initiator_result_code="string", initiator_single_parameter=True)
    async with http_client() as http:
        client = DarajaClient(initiator_config(sim.url), http)
        receipt = await paid_receipt(client, sim, "254712350011")
        await reverse(client, callback_receiver, receipt)
    raw = callback_receiver.wait_for(RESULT, timeout_s=10)[0].json()
    assert raw["Result"]["ResultCode"] == "0"
    assert isinstance(raw["Result"]["ResultParameters"]["ResultParameter"], dict)
    parsed = parse_result(orjson_dumps(raw))
    assert parsed is not None and parsed.succeeded
    assert parsed.text("OriginalTransactionID") == receipt


def orjson_dumps(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


# --- the parser on its own --------------------------------------------------------------------


def test_parser_tolerates_every_variant_seen() -> None:
    body = {
        "Result": {
            "ResultType": "0",
            "ResultCode": 2001,
            "ResultDesc": "The initiator information is invalid.",
            "ConversationID": "AG_1",
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "DebitPartyName", "Value": "600000 - Org"},
                    {"Key": "TransactionReason"},
                    {"Key": "Amount", "Value": 1.0},
                    {"Key": "DebitPartyName", "Value": "2547 - Customer"},
                    "junk",
                ]
            },
        }
    }
    parsed = parse_result(httpx.Request("POST", "http://x", json=body).content)
    assert parsed is not None
    assert parsed.result_code == "2001" and not parsed.succeeded
    assert parsed.params("DebitPartyName") == ["600000 - Org", "2547 - Customer"]
    assert parsed.param("TransactionReason") is None
    assert amount_minor(parsed.param("Amount")) == 100
    assert parse_result(b"not json") is None
    assert parse_result(b'{"Result": {"ResultDesc": "no code"}}') is None
    assert parse_result(b'{"Result": {"ResultCode": "R000002"}}').result_code == "R000002"  # type: ignore[union-attr]
    single = parse_result(
        b'{"Result": {"ResultCode": 0, "ResultParameters": {"ResultParameter":'
        b' {"Key": "BOCompletedTime", "Value": 20200101000000}}}}'
    )
    assert single is not None and single.param("BOCompletedTime") == 20200101000000


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        (1.0, 100),
        ("300", 30_000),
        (300, 30_000),
        ("12.5", 1250),
        ("1e3", None),
        (True, None),
        ("", None),
        (None, None),
        ("\uff11", None),  # a fullwidth digit
    ],
)
def test_amounts(value: Any, cents: int | None) -> None:
    assert amount_minor(value) == cents
