"""Schema migrations, configured in code (there is no alembic.ini)."""

import asyncio
import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Alembic's `context` is a process-wide proxy: two upgrades in one process must
# take turns. Across processes, the environment locks the database instead.
_upgrade_lock = threading.Lock()


def alembic_config(database_url: str) -> Config:
    """Builds the Alembic configuration for a database, e.g. for command.revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option: ini values interpolate '%'.
    config.attributes["database_url"] = database_url
    return config


@contextmanager
def _other_processes_wait(database_url: str) -> Iterator[None]:
    """Holds a lock file beside a SQLite database for as long as its upgrade runs.

    `BEGIN IMMEDIATE` in the environment did not keep two processes from running the
    same revision (one failed with "table … already exists" about one time in three):
    an exclusive lock on a file beside the database does. PostgreSQL takes an advisory
    lock in the environment instead.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    lock_path = Path(f"{url.database}.migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _upgrade_to_head(config: Config) -> None:
    with _upgrade_lock, _other_processes_wait(config.attributes["database_url"]):
        command.upgrade(config, "head")


async def migrate(database_url: str) -> None:
    """Upgrades the database schema to the latest revision; a no-op when already there."""
    # The Alembic environment runs its own event loop, so it needs its own thread.
    await asyncio.to_thread(_upgrade_to_head, alembic_config(database_url))
