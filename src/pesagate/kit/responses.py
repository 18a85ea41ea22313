"""The building blocks of the declared response bodies (each domain's `responses.py`).

Response bodies are TypedDicts: the views build plain dicts that mypy checks against them, the
routes declare them in the OpenAPI document, and nothing validates them again at runtime (the
bodies go out as orjson bytes). pydantic needs typing_extensions' TypedDict on Python < 3.12.
"""

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

T = TypeVar("T")

# A declared body lists every field it has: `additionalProperties: false` in the document.
closed = with_config(ConfigDict(extra="forbid"))

Money = Annotated[
    str,
    Field(pattern=r"^-?[0-9]+\.[0-9]{2}$", examples=["1500.00"], description="A decimal string"),
]
Timestamp = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$",
        examples=["2026-11-28T08:23:11.042Z"],
        description="RFC 3339, UTC, milliseconds",
    ),
]


@closed
class Paginated(TypedDict, Generic[T]):
    """A page of a list; `next` and `previous` are full URLs."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


@closed
class Health(TypedDict):
    status: Literal["ok"]


@closed
class NotReady(TypedDict):
    status: Literal["unavailable"]
    error: str  # the name of the exception the database check raised
