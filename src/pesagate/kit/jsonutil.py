"""JSON through orjson: fast, strict, and the one place that decides how we serialise."""

from typing import Any

import orjson
from starlette.responses import Response


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


class JSONBytesResponse(Response):
    """A JSON response rendered by orjson (for handlers that build their own bodies)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
