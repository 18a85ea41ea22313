"""JSON through orjson: fast, strict, and the one place that decides how we serialise."""

from typing import Any

import orjson
from starlette.responses import JSONResponse


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


class JSONBytesResponse(JSONResponse):
    """A JSON response rendered by orjson (for handlers that build their own bodies)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
