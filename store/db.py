"""Engine and session construction for SQLite (embedded) and PostgreSQL (scale-out)."""

from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, func, make_url, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 5000


def create_engine(database_url: str) -> AsyncEngine:
    """Creates an async engine tuned for the URL's dialect."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    if url.get_backend_name() == "postgresql":
        return create_async_engine(
            url,
            pool_size=5,
            max_overflow=10,
            # Connections dropped by a database restart or failover are replaced
            # transparently instead of failing the next request.
            pool_pre_ping=True,
            pool_recycle=1800,
        )
    return create_async_engine(url)


def _set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # busy_timeout first: switching to WAL needs a lock another process may hold.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_transaction_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Creates the factory the catalog and the audit log open their transactions from."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Runs SELECT 1, raising when the database cannot be reached."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def insert_statement(dialect: str, table: type[Any] | Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can skip rows already there (`on_conflict_do_nothing`), per dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the store does not support the {dialect} dialect")


async def serialize_on(session: AsyncSession, key: str) -> None:
    """Makes transactions that name the same key run one after another from here to their end.

    PostgreSQL takes a transaction-scoped advisory lock. SQLite has one writer at a
    time already: there the transaction's first statement must be its write.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
