"""HTTP plumbing for the API: request ids, body limits, error rendering, access metrics.

Pure ASGI middleware (no BaseHTTPMiddleware): it keeps streaming and background semantics
intact and costs little on the hot paths.
"""

import asyncio
import contextlib
import secrets
import time
from typing import Any, NoReturn

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pesagate import metrics
from pesagate.errors import ApiError, BadRequest, PayloadTooLarge, RequestTimeout
from pesagate.kit.jsonutil import JSONBytesResponse

log = structlog.get_logger("pesagate.http")

REQUEST_ID_HEADER = "x-request-id"
CLIENT_CLOSED_REQUEST = 499  # nginx's code, for metrics: no response was sent
BODY_LIMIT_BYTES = 64 * 1024
BODY_READ_TIMEOUT_S = 10.0


class RequestContextMiddleware:
    """X-Request-ID in and out, bound to every log line of the request; request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or secrets.token_hex(16)  # uuid4: 3x the CPU
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                scope[_STARTED] = True
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client went away before sending its whole body: nobody to answer.
            status = CLIENT_CLOSED_REQUEST
            log.info("client disconnected", path=scope.get("path"))
        except Exception:
            # Rendered here rather than by Starlette's outermost handler, so that a 500 too
            # carries its request id and is counted.
            log.exception("unhandled error")
            if status != 500 or _started(scope):
                raise
            await send_with_id(_server_error_start())
            await send({"type": "http.response.body", "body": _SERVER_ERROR_BODY})
        finally:
            metrics.observe_request(scope, status, time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("request_id")


_STARTED = "pesagate.response_started"
_SERVER_ERROR_BODY = b'{"detail":"A server error occurred."}'


def _started(scope: Scope) -> bool:
    return bool(scope.get(_STARTED))


def _server_error_start() -> Message:
    return {
        "type": "http.response.start",
        "status": 500,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_SERVER_ERROR_BODY)).encode()),
        ],
    }


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            # Echo only something safe to put in a header and a log line.
            if 0 < len(text) <= 128 and text.isprintable():
                return str(text)
    return None


class InputGuardMiddleware:
    """413 for bodies over 64 KiB, whether declared up front or streamed; 408 for a body that
    has not fully arrived within `body_timeout_s` of the request's headers; 400 for NUL
    characters in the path or query (PostgreSQL cannot store them, SQLite truncates).

    An answer sent before the whole body arrived (these errors, or a 401 from authentication,
    which reads headers only) closes the connection: otherwise a client trickling its body
    would keep it open after the answer."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = BODY_LIMIT_BYTES,
        body_timeout_s: float = BODY_READ_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.limit = limit
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _GuardedBody(scope, receive, self.limit, self.body_timeout_s)
        early_error = _early_error(scope, self.limit)
        if early_error is not None:
            await _send_error(scope, send, early_error, close=not body.complete)
            return
        # A refused body is answered here; the app may have rendered it as an error of its own.
        with contextlib.suppress(_BodyRefused):
            await self.app(scope, body.receive, body.send_through(send))
        if body.refusal is not None and not body.response_started:
            await _send_error(scope, send, body.refusal, close=True)


def _early_error(scope: Scope, limit: int) -> ApiError | None:
    if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
        return BadRequest("NUL characters are not allowed.")
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return PayloadTooLarge()
    return None


class _BodyRefused(Exception):
    pass


class _GuardedBody:
    """The request's `receive`, with the size limit and the deadline for the whole body; and
    a `send` that replaces the app's answer once the body was refused."""

    def __init__(self, scope: Scope, receive: Receive, limit: int, timeout_s: float) -> None:
        self._receive = receive
        self._limit = limit
        self._deadline = time.monotonic() + timeout_s
        self._received = 0
        self.complete = not _declares_body(scope)
        self.refusal: ApiError | None = None
        self.response_started = False

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()  # after the body: only a disconnect can come
        try:
            async with asyncio.timeout(self._deadline - time.monotonic()):
                message = await self._receive()
        except TimeoutError:
            self._refuse(RequestTimeout())
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                self._refuse(PayloadTooLarge())
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True
        return message

    def _refuse(self, error: ApiError) -> NoReturn:
        self.refusal = error
        raise _BodyRefused

    def send_through(self, send: Send) -> Send:
        async def guarded_send(message: Message) -> None:
            if self.refusal is not None and not self.response_started:
                return  # the app's own rendering of the refusal: ours is sent instead
            if message["type"] == "http.response.start":
                self.response_started = True
                if not self.complete:
                    message["headers"] = [*message.get("headers", []), _CONNECTION_CLOSE]
            await send(message)

        return guarded_send


_CONNECTION_CLOSE = (b"connection", b"close")


def _declares_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


async def _send_error(scope: Scope, send: Send, error: ApiError, *, close: bool) -> None:
    """Answer `error`; `close`: and close the connection (the rest of the body is unwanted)."""
    headers = {"Connection": "close"} if close else None
    response = JSONBytesResponse(error.body(), status_code=error.status_code, headers=headers)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_exception)  # type: ignore[arg-type]


async def _api_error(_: Request, exc: ApiError) -> Response:
    return JSONBytesResponse(exc.body(), status_code=exc.status_code, headers=exc.headers())


async def _request_validation_error(_: Request, exc: RequestValidationError) -> Response:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        location = [
            str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")
        ]
        field = ".".join(location) or "non_field_errors"
        message = "This field is required." if error.get("type") == "missing" else str(error["msg"])
        errors.setdefault(field, []).append(message)
    return JSONBytesResponse(errors, status_code=400)


async def _http_exception(request: Request, exc: StarletteHTTPException) -> Response:
    detail: Any = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = "Not found."
    elif exc.status_code == 405:
        detail = f'Method "{request.method}" not allowed.'
    return JSONBytesResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
