from collections.abc import AsyncIterator

import pytest

from pesagate.config import Settings
from pesagate.db import Database
from tests.ledger.books import Books


@pytest.fixture
async def books(db_url: str) -> AsyncIterator[Books]:
    db = Database(db_url)
    yield Books(db, Settings(database_url=db_url))
    await db.dispose()
