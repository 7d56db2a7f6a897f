"""Alembic environment: runs the migrations over the async engine of store.db."""

import asyncio

from alembic import context
from sqlalchemy import Connection, text

from store.db import create_engine
from store.models import Base

# Any constant works: it only has to be the same in every process that migrates.
POSTGRES_MIGRATION_LOCK_KEY = 0x57_53_4D_49_47  # "WSMIG"


def _lock_against_concurrent_migrations(connection: Connection) -> None:
    # Held until the migration transaction ends, so a second process waits and
    # then finds the schema already at head instead of creating it twice. SQLite
    # upgrades take a lock file instead (`store.migrate`).
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_MIGRATION_LOCK_KEY}
        )


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: autogenerate must emit table rebuilds.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        _lock_against_concurrent_migrations(connection)
        context.run_migrations()


async def _run_async_migrations() -> None:
    engine = create_engine(context.config.attributes["database_url"])
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
    finally:
        await engine.dispose()


asyncio.run(_run_async_migrations())
