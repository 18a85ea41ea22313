"""The one exception tree of the API. Every error carries its HTTP status and renders as the
reference API does: `{"detail": "..."}`, or for validation a map of field -> messages
(`{"amount": ["Ensure this value is at least 10."]}`, Django REST framework style)."""

from typing import Any


class ApiError(Exception):
    """Base of every error the API answers on purpose."""

    status_code = 500
    default_detail = "A server error occurred."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}

    def headers(self) -> dict[str, str]:
        return {}


class ValidationFailed(ApiError):
    """400: one or more fields are invalid; all of them are reported together."""

    status_code = 400

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("Invalid input.")

    def body(self) -> dict[str, Any]:
        return dict(self.errors)

    @classmethod
    def field(cls, name: str, message: str) -> "ValidationFailed":
        return cls({name: [message]})


class BadRequest(ApiError):
    status_code = 400
    default_detail = "Bad request."


class NotAuthenticated(ApiError):
    status_code = 401
    default_detail = "Authentication credentials were not provided."


class AuthenticationFailed(ApiError):
    status_code = 401
    default_detail = "Invalid api token"


class PermissionDenied(ApiError):
    status_code = 403
    default_detail = "This endpoint requires your secret key."


class NotFound(ApiError):
    status_code = 404
    default_detail = "Not found."


class RequestTimeout(ApiError):
    status_code = 408
    default_detail = "The request body was not received in time."


class Conflict(ApiError):
    status_code = 409
    default_detail = "Conflict."


class PayloadTooLarge(ApiError):
    status_code = 413
    default_detail = "Request body is too large (limit 64 KiB)."


class UnsupportedMediaType(ApiError):
    status_code = 415

    def __init__(self, content_type: str) -> None:
        super().__init__(f'Unsupported media type "{content_type}" in request.')


class ServiceUnavailable(ApiError):
    status_code = 503
    default_detail = "Service temporarily unavailable, try again later."
