"""Engines of one process to one server share their dialect and compiled statements
(`pesagate.db._share_compiled_statements`), and each still reaches its own database."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.exc import DBAPIError

from pesagate.db import Database
from pesagate.models import Job

COUNT_JOBS = select(func.count()).select_from(Job).where(Job.kind == "shared-dialect-test")


async def test_an_engine_reuses_what_another_compiled_and_runs_it_on_its_own_database(
    db_url: str, empty_db_url: str
) -> None:
    migrated, empty = Database(db_url), Database(empty_db_url)
    try:
        async with migrated.read() as session:
            await session.execute(select(1))  # connected: its dialect knows its server
        async with empty.read() as session:
            with pytest.raises(DBAPIError):  # compiled here, run on a database without tables
                await session.execute(COUNT_JOBS)
        async with migrated.read() as session:
            connection = await session.connection()
            result = await connection.execute(COUNT_JOBS)
            assert result.context.cache_hit == CacheStats.CACHE_HIT
            assert result.scalar() == 0
        assert migrated.engine.sync_engine.dialect is empty.engine.sync_engine.dialect
    finally:
        await migrated.dispose()
        await empty.dispose()
