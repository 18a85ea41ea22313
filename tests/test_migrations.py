"""The migrations build exactly the schema the models describe, on both databases."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pesagate import migrate
from pesagate.db import create_engine
from pesagate.models import Base


def test_migrated_schema_matches_the_models(db_url):
    async def diff():
        await migrate.upgrade(db_url)
        engine = create_engine(db_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []


def test_upgrading_twice_is_harmless(db_url):
    asyncio.run(migrate.upgrade(db_url))
    asyncio.run(migrate.upgrade(db_url))
    assert asyncio.run(migrate.is_up_to_date(db_url))
