"""The OpenAPI document, made truthful: every error a route can answer, in the shapes it
answers them, the Idempotency-Key header where it applies, and the request bodies that are
validated by hand (their schemas' definitions moved to `components`). Success bodies are the
response models each route declares (`kit.api.routes_on`'s `answers`)."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

DETAIL = {"$ref": "#/components/schemas/ErrorDetail"}
FIELDS = {"$ref": "#/components/schemas/FieldErrors"}
# A 400 is either invalid fields or a malformed request (bad JSON, NUL characters).
BAD_REQUEST = {"anyOf": [FIELDS, DETAIL]}
ERROR_SCHEMAS = {
    "ErrorDetail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
        "description": "Any error other than invalid fields.",
    },
    "FieldErrors": {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "description": 'Invalid fields, each with its messages: {"amount": ["…"]}.',
    },
}
DESCRIPTIONS = {
    "400": "Invalid input: the fields (or query parameters) and what is wrong with each",
    "401": "No credentials, an unknown or revoked key, or a key of the other environment",
    "403": "A public key where the secret key is needed (or a secret key where the public key "
    "is), a checkout signature for another session, or a callback from outside the allowlist",
    "404": "No such object for this merchant (another merchant's ids included), or no such page",
    "408": "The body did not arrive within PESAGATE_BODY_READ_TIMEOUT_S",
    "409": "A request with this Idempotency-Key is still running, or the event is not FAILED",
    "413": "The body is over 64 KiB",
    "415": "The body is not JSON",
    "422": "This Idempotency-Key was used with a different request",
    "429": "Over the rate limit; see Retry-After",
    "503": "The database is not reachable",
}
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Replays the first completed answer for 24 h (Idempotent-Replayed: true).",
}


def install(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _truthful(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _truthful(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(ERROR_SCHEMAS)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            _hoist_definitions(operation, components)
            _declare_errors(path, method, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def _hoist_definitions(operation: dict[str, Any], components: dict[str, Any]) -> None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    definitions = content.get("schema", {}).pop("$defs", None)
    if definitions:
        components.update(definitions)


def _declare_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's own validation answer: pesagate answers 400
    for code in _error_codes(path, method, operation):
        shape = BAD_REQUEST if code == "400" else DETAIL
        # A route that declares an error answer of its own keeps its shape (readiness).
        declared = responses.setdefault(code, {"content": {"application/json": {"schema": shape}}})
        declared["description"] = DESCRIPTIONS[code]
    if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
        ok = responses.get("200", {})
        ok.setdefault("headers", {})["Idempotent-Replayed"] = {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "Present when this is the stored answer to an earlier request",
        }


def _error_codes(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    summary = operation.get("summary", "")
    has_body = method in ("post", "patch", "put")
    # Hosted checkout: a secret key where the public key belongs, or a checkout signature for
    # another session (403); a checkout session that does not exist (404).
    in_session = "public key only" in summary or "checkout_id" in summary
    codes: list[str] = []
    if path.startswith("/api/v1"):
        codes += ["400", "401", "429"]
        if "(secret key)" in summary or in_session:
            codes.append("403")
        if "{" in path or method == "get" or "status" in path or "details" in path or in_session:
            codes.append("404")
        if has_body:
            codes += ["408", "413", "415"]
        if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
            codes += ["409", "422"]
        if path.endswith("/replay/"):
            codes.append("409")
    elif path.startswith("/callbacks/"):
        codes += ["403", "408", "413", "429"]  # 429: too many posts for no invoice or refund
    elif path == "/readyz":
        codes.append("503")
    if "{" in path or "?" in path:
        codes.append("400")  # NUL characters in the path
    return sorted(set(codes))
