"""Store fixtures: every test runs against a migrated SQLite file and a PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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

# The admin connection creates one throwaway database per test run (and per
# pytest-xdist worker), so parallel runs never see each other's rows.
POSTGRES_ADMIN_URL = os.environ.get(
    "STORE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)

T = TypeVar("T")


def run_sync(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs a coroutine to completion on a private loop, away from pytest-asyncio's loop."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, make_coroutine()).result()


class PostgresServer:
    """Creates throwaway databases on the local PostgreSQL and drops them at the end."""

    def __init__(self, admin_url: str) -> None:
        url = make_url(admin_url)
        self._admin_url = url
        self._admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._created: list[str] = []

    def check_reachable(self) -> None:
        """Raises when the admin connection cannot be made."""
        run_sync(partial(self._admin, "SELECT 1"))

    async def _admin(self, statement: str) -> None:
        connection = await asyncpg.connect(self._admin_dsn, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def create_database(self) -> str:
        """Creates an empty database and returns its SQLAlchemy URL."""
        name = f"store_test_{uuid.uuid4().hex[:12]}"
        run_sync(partial(self._admin, f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return self._admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drops every database this object created."""
        for name in self._created:
            run_sync(partial(self._admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(POSTGRES_ADMIN_URL)
    try:
        server.check_reachable()
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        reason = f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {error!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
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
