"""Alembic environment. Migrations always run on a connection handed in by
`pesagate.migrate`, which works from inside a running event loop and holds the lock that
keeps several nodes from migrating at once."""

from alembic import context

from pesagate.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `pesagate migrate` (pesagate.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
