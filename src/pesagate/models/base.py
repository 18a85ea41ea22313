"""Declarative base with one naming convention, so migrations name constraints predictably."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, DateTime, Enum, Integer, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from pesagate.kit.clock import utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" auto-increments.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def enum_column(enum: type[StrEnum], length: int) -> Enum:
    """A `VARCHAR(length)` holding the members' values, loaded as members. No CHECK
    constraint and no native enum type: adding a member never needs a migration."""
    return Enum(
        enum,
        native_enum=False,
        length=length,
        create_constraint=False,
        values_callable=_values,
    )


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on both backends (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return _sqlite_utc_text
        return super().bind_processor(dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """What `process_bind_param` and SQLite's DATETIME make of a value, in one step: its UTC
    time as `YYYY-MM-DD HH:MM:SS.ffffff`. Through the two, each value's dict and %-format were
    ~2.5% of an STK push's CPU (it binds about ten). `tests/test_utc_datetime.py` compares."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    utc = value.astimezone(UTC)
    text = utc.replace(tzinfo=None).isoformat(" ")
    return text if utc.microsecond else text + ".000000"  # isoformat leaves out zero


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
