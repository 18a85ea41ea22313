"""Page-number pagination: `{"count", "next", "previous", "results"}` (SPEC section 3)."""

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import URL

from pesagate.errors import NotFound, ValidationFailed

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 500
PAGE_MAX = 1_000_000  # far past any real list; keeps offsets well inside 64 bits


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def parse_page(page: str | None, page_size: str | None) -> Page:
    number = _positive(page, "page", 1)
    size = min(_positive(page_size, "page_size", PAGE_SIZE_DEFAULT), PAGE_SIZE_MAX)
    return Page(number, size)


def _positive(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    # isdigit() alone accepts "²" and "①", which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= PAGE_MAX:
        raise ValidationFailed.field(name, f"Enter a whole number from 1 to {PAGE_MAX}.")
    return int(raw)


def paginated(url: URL, page: Page, count: int, results: list[Any]) -> dict[str, Any]:
    if page.number > 1 and page.offset >= count:
        raise NotFound("Invalid page.")
    has_next = page.offset + len(results) < count
    return {
        "count": count,
        "next": str(url.include_query_params(page=page.number + 1)) if has_next else None,
        "previous": _previous(url, page),
        "results": results,
    }


def _previous(url: URL, page: Page) -> str | None:
    if page.number <= 1:
        return None
    if page.number == 2:
        return str(url.remove_query_params("page"))
    return str(url.include_query_params(page=page.number - 1))
