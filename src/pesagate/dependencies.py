"""FastAPI dependencies shared by every router, as `Annotated` aliases.

Every dependency is `async def`, even the trivial ones: FastAPI runs a plain `def` dependency
in its thread pool, a thread hop per dependency per request (status went from ~600 to ~670
requests/s in one process when they became async).

Every dependency node also costs ~55,000 instructions per request to solve (FastAPI 0.165,
`python -m bench.instructions status-app`), even one that only returns `app.state.db`. So
dependencies take the app's collaborators with `app_db` / `app_settings`, never as
sub-dependencies, and the hot routes (push, status, Daraja's callbacks) declare none: their
first line authenticates the caller, then they take what they need from the app."""

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from pesagate.config import Settings
from pesagate.db import Database
from pesagate.errors import BadRequest, UnsupportedMediaType, ValidationFailed
from pesagate.kit.pagination import Page, parse_page


def app_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> Database:
    return app_db(request)


async def get_settings(request: Request) -> Settings:
    return app_settings(request)


_PARSED_BODY = "pesagate.json_body"


async def get_json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, parsed once per request (authentication may need it before
    the handler). An empty body is `{}`; anything else that is not a JSON object is a 400 (or
    415 for another content type), never a 500."""
    if request.method in ("GET", "HEAD", "DELETE"):
        return {}  # bodies of these are ignored, never parsed
    if _PARSED_BODY not in request.scope:
        request.scope[_PARSED_BODY] = await _parse_json_object(request)
    body: dict[str, Any] = request.scope[_PARSED_BODY]
    return body


async def _parse_json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    if b"\\u0000" in raw or b"\x00" in raw:
        raise BadRequest("NUL characters are not allowed.")
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type.split(";")[0].lower():
        raise UnsupportedMediaType(content_type.split(";")[0] or "none")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"JSON parse error - {exc}") from None
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise ValidationFailed.field(
            "non_field_errors", f"Invalid data. Expected a dictionary, but got {kind}."
        )
    return body


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JsonBody = Annotated[dict[str, Any], Depends(get_json_body)]


async def get_page(page: str | None = None, page_size: str | None = None) -> Page:
    """`?page=` and `?page_size=` (default 50, at most 500), validated."""
    return parse_page(page, page_size)


PageDep = Annotated[Page, Depends(get_page)]
