import asyncio
from collections.abc import AsyncIterator

import pytest

from pesagate import migrate
from pesagate.config import Settings
from pesagate.db import Database
from tests.ledger.books import Books


@pytest.fixture
def migrated_url(db_url: str) -> str:
    asyncio.run(migrate.upgrade(db_url))
    return db_url


@pytest.fixture
async def books(db_url: str) -> AsyncIterator[Books]:
    await migrate.upgrade(db_url)
    db = Database(db_url)
    yield Books(db, Settings(database_url=db_url))
    await db.dispose()
