"""`UTCDateTime` on SQLite binds in one step what SQLAlchemy's TypeDecorator and SQLite
DATETIME would bind in two: the same text for every value, and the same refusals."""

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from pesagate.models.base import UTCDateTime

DIALECT = sqlite.dialect()
OURS = UTCDateTime().bind_processor(DIALECT)
SQLALCHEMYS = DateTime(timezone=True).dialect_impl(DIALECT).bind_processor(DIALECT)


def theirs(value: datetime | None) -> str | None:
    return SQLALCHEMYS(UTCDateTime().process_bind_param(value, DIALECT))


def values() -> list[datetime]:
    rng = random.Random(17)
    zones = [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-9, minutes=-30))]
    edges = [
        datetime(2026, 12, 6, 14, 0, 0, tzinfo=UTC),  # no microseconds
        datetime(2026, 12, 6, 14, 0, 0, 1, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),  # a year of three digits
        datetime(2027, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=3))),  # the day before in UTC
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    spread = [
        datetime.fromtimestamp(rng.uniform(0, 4e9), tz=rng.choice(zones)).replace(
            microsecond=rng.choice([0, rng.randrange(1_000_000)])
        )
        for _ in range(2_000)
    ]
    return edges + spread


@pytest.mark.parametrize("value", [*values()[:5], None])
def test_edges_bind_as_sqlalchemy_binds_them(value):
    assert OURS(value) == theirs(value)


def test_many_values_bind_as_sqlalchemy_binds_them():
    for value in values():
        assert OURS(value) == theirs(value), value


def test_a_naive_value_is_refused():
    with pytest.raises(ValueError, match="naive"):
        OURS(datetime(2026, 12, 6, 14, 0))
