"""Page-number pagination: `{"count", "next", "previous", "results"}` (SPEC section 3)."""

from dataclasses import dataclass
from typing import TypeVar

from starlette.datastructures import URL

from pesagate.errors import NotFound, ValidationFailed
from pesagate.kit.responses import Paginated

T = TypeVar("T")

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
    number = _whole_number(page, "page", 1, PAGE_MAX)
    size = _whole_number(page_size, "page_size", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
    return Page(number, size)


def _whole_number(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    # isdigit() alone accepts "²" and "①", which int() refuses; a digit string longer than
    # the maximum's is out of range before int() (which refuses over 4,300 digits) sees it.
    if (
        not (raw.isascii() and raw.isdigit())
        or len(raw) > len(str(maximum))
        or not 1 <= int(raw) <= maximum
    ):
        raise ValidationFailed.field(name, f"Enter a whole number from 1 to {maximum}.")
    return int(raw)


def paginated(url: URL, page: Page, count: int, results: list[T]) -> Paginated[T]:
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
