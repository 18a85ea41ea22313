"""The migrations build exactly the schema the models describe, on both databases."""

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from pesagate import migrate
from pesagate.db import create_engine
from pesagate.models import Base


def test_migrated_schema_matches_the_models(empty_db_url):
    async def diff():
        await migrate.upgrade(empty_db_url)
        engine = create_engine(empty_db_url)
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


def test_upgrading_twice_is_harmless(empty_db_url):
    asyncio.run(migrate.upgrade(empty_db_url))
    asyncio.run(migrate.upgrade(empty_db_url))
    assert asyncio.run(migrate.is_up_to_date(empty_db_url))


def test_revisions_form_one_line_named_by_their_files():
    """What `migrate.head_revision` relies on to find the head without loading Alembic."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = list(scripts.walk_revisions())
    assert len(scripts.get_heads()) == 1
    for revision in revisions:
        assert Path(revision.path).name.startswith(f"{revision.revision}_")
    assert migrate.head_revision() == scripts.get_current_head()
