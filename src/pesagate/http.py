"""HTTP plumbing for the API: request ids, body limits, error rendering, access metrics.

Pure ASGI middleware (no BaseHTTPMiddleware): it keeps streaming and background semantics
intact and costs little on the hot paths.
"""

import time
import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pesagate import metrics
from pesagate.errors import ApiError, BadRequest, PayloadTooLarge
from pesagate.kit.jsonutil import JSONBytesResponse

log = structlog.get_logger("pesagate.http")

REQUEST_ID_HEADER = "x-request-id"
CLIENT_CLOSED_REQUEST = 499  # nginx's code, for metrics: no response was sent
BODY_LIMIT_BYTES = 64 * 1024


class RequestContextMiddleware:
    """X-Request-ID in and out, bound to every log line of the request; request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
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
    """413 for bodies over 64 KiB, whether declared up front or streamed; 400 for NUL
    characters in the path or query (PostgreSQL cannot store them, SQLite truncates)."""

    def __init__(self, app: ASGIApp, limit: int = BODY_LIMIT_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await _send_error(scope, receive, send, BadRequest("NUL characters are not allowed."))
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_error(scope, receive, send, PayloadTooLarge())
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _send_error(scope, receive, send, PayloadTooLarge())


class _BodyTooLarge(Exception):
    pass


async def _send_error(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    response = JSONBytesResponse(error.body(), status_code=error.status_code)
    await response(scope, receive, send)


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
