"""The API's timestamp format: UTC, milliseconds (truncated, never rounded up), Z."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pesagate.kit.clock import rfc3339_ms


@pytest.mark.parametrize(
    ("moment", "rendered"),
    [
        (datetime(2026, 11, 28, 8, 23, 11, 42_999, tzinfo=UTC), "2026-11-28T08:23:11.042Z"),
        (datetime(2026, 11, 28, 8, 23, 11, 999_999, tzinfo=UTC), "2026-11-28T08:23:11.999Z"),
        (datetime(2026, 11, 28, 8, 23, 11, tzinfo=UTC), "2026-11-28T08:23:11.000Z"),
        # Nairobi time is given back in UTC, across midnight.
        (
            datetime(2026, 1, 1, 2, 0, 0, 500, tzinfo=timezone(timedelta(hours=3))),
            "2025-12-31T23:00:00.000Z",
        ),
    ],
)
def test_rfc3339_ms(moment, rendered):
    assert rfc3339_ms(moment) == rendered
