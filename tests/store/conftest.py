"""Store fixtures: every test runs against a migrated SQLite file and a PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
import pytest_asyncio
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store.audit import AuditLog
from store.db import create_engine, create_transaction_factory
from store.migrate import migrate
from store.sops import SopCatalog
from store.start_keys import SessionStartKeys
from tests.helpers.postgres import PostgresServer, reachable_postgres, run_sync


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = reachable_postgres()
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def shared_postgres_url(postgres_server: PostgresServer) -> str:
    url = postgres_server.create_database()
    run_sync(partial(migrate, url))
    return url


async def _truncate(url: str) -> None:
    connection = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await connection.execute(
            "TRUNCATE sop_versions, audit_events, audit_dead_letters, session_start_keys"
            " RESTART IDENTITY"
        )
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def blank_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without any tables."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/blank/store.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database with no rows."""
    if backend == "sqlite":
        sqlite_url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
        run_sync(partial(migrate, sqlite_url))
        return sqlite_url
    postgres_url: str = request.getfixturevalue("shared_postgres_url")
    run_sync(partial(_truncate, postgres_url))
    return postgres_url


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_transaction_factory(engine)


@pytest.fixture
def sop_catalog(session_factory: async_sessionmaker[AsyncSession]) -> SopCatalog:
    return SopCatalog(session_factory)


@pytest.fixture
def audit_store(session_factory: async_sessionmaker[AsyncSession]) -> AuditLog:
    return AuditLog(session_factory)


@pytest.fixture
def start_keys(session_factory: async_sessionmaker[AsyncSession]) -> SessionStartKeys:
    return SessionStartKeys(session_factory)
