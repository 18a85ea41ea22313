"""Schema migrations (Alembic), runnable from sync or async code, safe with many nodes.

Alembic is imported only when a migration runs: every CLI command checks the schema first, and
when it is already at the head (nearly always) that check is one SELECT, not Alembic's ~0.3 s
of imports and script loading."""

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from pesagate.db import create_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
# Any constant: nodes that start together wait for one another on this PostgreSQL lock.
MIGRATION_LOCK_ID = 7_343_117_001


def alembic_config() -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision, without loading Alembic: revisions form one line and each is named
    by its file's four-digit prefix (`tests/test_migrations.py` holds both conventions)."""
    return max(path.name[:4] for path in VERSIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.py"))


async def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def current_revision(url: str) -> str | None:
    """What `alembic_version` records; None for a database never migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            try:
                result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            except DBAPIError:  # no such table yet
                return None
            return result.scalar_one_or_none()
    finally:
        await engine.dispose()


async def is_up_to_date(url: str) -> bool:
    return await current_revision(url) == head_revision()
