"""Time helpers. M-Pesa speaks Nairobi local time (UTC+3, no daylight saving)."""

from datetime import UTC, datetime, timedelta, timezone

NAIROBI = timezone(timedelta(hours=3), name="EAT")


def utc_now() -> datetime:
    return datetime.now(UTC)


def nairobi_now() -> datetime:
    return datetime.now(NAIROBI)


def rfc3339_ms(moment: datetime) -> str:
    """`2026-11-28T08:23:11.042Z`: the API's timestamp format (UTC, milliseconds, Z)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
