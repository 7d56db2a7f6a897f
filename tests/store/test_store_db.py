"""Engine setup, readiness ping and migrations."""

import asyncio
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from store.db import create_engine, create_transaction_factory, ping
from store.migrate import migrate
from store.models import Base
from store.sops import SopCatalog, SopDefinition

pytestmark = pytest.mark.asyncio

MINIMAL_SOP = SopDefinition.model_validate(
    {
        "id": "minimal",
        "title": "Minimal",
        "steps": [
            {"id": "s", "title": "S", "checks": [{"id": "c", "prompt": "P", "kind": "confirm"}]}
        ],
    }
)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrate_creates_the_tables_and_running_it_again_keeps_the_data(
    blank_database_url: str,
) -> None:
    await migrate(blank_database_url)
    engine = create_engine(blank_database_url)
    try:
        await SopCatalog(create_transaction_factory(engine)).publish(MINIMAL_SOP, "tester")
        await migrate(blank_database_url)
        async with engine.connect() as connection:
            assert {
                "sop_versions",
                "audit_events",
                "session_start_keys",
                "alembic_version",
            } <= await connection.run_sync(_tables)
            assert (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).all() == [("0003",)]
        assert await SopCatalog(create_transaction_factory(engine)).get("minimal") is not None
    finally:
        await engine.dispose()


async def alembic_version_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.scalar(text("SELECT count(*) FROM alembic_version"))
    finally:
        await engine.dispose()
    assert isinstance(rows, int)
    return rows


async def test_two_migrations_in_one_process_at_once_both_succeed(blank_database_url: str) -> None:
    await asyncio.gather(migrate(blank_database_url), migrate(blank_database_url))
    assert await alembic_version_rows(blank_database_url) == 1


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_sqlite_engine_creates_its_folder_and_sets_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/deeper/app.db")
    try:
        await ping(engine)
        async with engine.connect() as connection:
            pragmas = [
                (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            ]
    finally:
        await engine.dispose()
    assert (tmp_path / "nested" / "deeper" / "app.db").exists()
    assert pragmas == ["wal", 5000, 1]


async def test_ping_succeeds_on_a_reachable_database(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await ping(engine)
    finally:
        await engine.dispose()


async def test_ping_raises_when_the_database_is_unreachable() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    try:
        with pytest.raises(OSError):
            await ping(engine)
    finally:
        await engine.dispose()


async def test_two_processes_can_migrate_at_once(blank_database_url: str) -> None:
    script = (
        "import asyncio, sys; from store.migrate import migrate; asyncio.run(migrate(sys.argv[1]))"
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, blank_database_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    assert await alembic_version_rows(blank_database_url) == 1
