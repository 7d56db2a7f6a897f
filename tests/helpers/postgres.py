"""Throwaway PostgreSQL databases for tests, on the local server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import make_url

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


def reachable_postgres() -> PostgresServer:
    """The local PostgreSQL server; the test is skipped (failed on CI) when it cannot be reached."""
    server = PostgresServer(POSTGRES_ADMIN_URL)
    try:
        server.check_reachable()
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        reason = f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {error!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return server
