"""Slow bodies (issue 12 point 6): a client that sends its headers and then trickles, or
stops sending, its body is answered 408 once the body deadline passes and disconnected; a
request without a valid key is refused from its headers, without waiting for the body."""

import json
import socket
from dataclasses import dataclass

from sqlalchemy import func, select

from pesagate.models import Invoice, MpesaCallback

DECLARED_LENGTH = 60_000
ANSWER_WAIT_S = 30.0  # how long a test waits for an answer before calling it a stall


@dataclass
class Answer:
    status: int
    headers: str
    body: bytes
    closed: bool  # the server closed the connection after answering


def slow_request(gateway, path: str, headers: dict[str, str] | None = None) -> socket.socket:
    """Send the headers of a 60 kB JSON POST and the first byte of its body, then nothing."""
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: pesagate",
        "Content-Type: application/json",
        f"Content-Length: {DECLARED_LENGTH}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n{").encode())
    return connection


def read_answer(connection: socket.socket, wait_s: float = ANSWER_WAIT_S) -> Answer:
    """Everything the server sends until it closes the connection (or `wait_s` passes)."""
    connection.settimeout(wait_s)
    data = b""
    closed = False
    try:
        while chunk := connection.recv(65536):
            data += chunk
        closed = True
    except TimeoutError:
        pass
    finally:
        connection.close()
    assert data, f"no answer within {wait_s}s"
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, _, headers = head.decode("latin-1").partition("\r\n")
    return Answer(int(status_line.split()[1]), headers.lower(), body, closed)


def count(gateway, model) -> int:
    return gateway.query(lambda s: s.scalar(select(func.count()).select_from(model)))


def test_slow_bodies_are_answered_408_and_disconnected_at_the_deadline(start_gateway):
    gateway = start_gateway(body_read_timeout_s=1.0)
    secret = {"Authorization": f"Bearer {gateway.merchant.secret_key}"}
    public = {"X-KULMI-PUBLIC-API-KEY": gateway.merchant.public_key}
    slow = [
        *(slow_request(gateway, "/api/v1/payment/mpesa-stk-push/", secret) for _ in range(100)),
        *(slow_request(gateway, "/api/v1/payment/collection/", public) for _ in range(50)),
        # No key in the headers: the body may carry the public key, so it is read (in time).
        *(slow_request(gateway, "/api/v1/payment/status/") for _ in range(50)),
        *(slow_request(gateway, "/callbacks/stk/some-token") for _ in range(100)),
    ]
    answers = [read_answer(connection) for connection in slow]
    assert {answer.status for answer in answers} == {408}
    assert all(answer.closed for answer in answers)
    assert {json.loads(answer.body)["detail"] for answer in answers} == {
        "The request body was not received in time."
    }
    # Nothing was created or stored from a body that never arrived, and the server answers.
    assert count(gateway, Invoice) == 0
    assert count(gateway, MpesaCallback) == 0
    with gateway.client(gateway.merchant.secret_key) as client:
        assert client.get("/invoices/").status_code == 200


def test_a_missing_or_wrong_key_is_refused_without_waiting_for_the_body(start_gateway):
    # A deadline far beyond the answer wait: an answer can only come from the headers.
    gateway = start_gateway(body_read_timeout_s=600)
    push, collect = "/api/v1/payment/mpesa-stk-push/", "/api/v1/payment/collection/"
    cases = [
        (push, {}, 401, "Authentication credentials were not provided."),
        (push, {"Authorization": "Bearer sk_test_wrong"}, 401, "Invalid api token"),
        (
            push,
            {"X-KULMI-PUBLIC-API-KEY": gateway.merchant.public_key},
            403,
            "This endpoint requires your secret key.",
        ),
        (collect, {"X-KULMI-PUBLIC-API-KEY": "pk_test_wrong"}, 401, "Invalid api token"),
        (collect, {"Authorization": "Bearer sk_test_wrong"}, 401, "Invalid api token"),
    ]
    for path, headers, status, detail in cases:
        answer = read_answer(slow_request(gateway, path, headers))
        assert (answer.status, json.loads(answer.body)) == (status, {"detail": detail}), headers
        assert answer.closed and "connection: close" in answer.headers
    assert count(gateway, Invoice) == 0


def test_the_public_key_in_the_body_still_works(gateway):
    with gateway.client() as client:
        response = client.post(
            "/payment/get_amount_estimate/",
            json={"amount": 100, "public_key": gateway.merchant.public_key},
        )
    assert response.status_code == 200, response.text
