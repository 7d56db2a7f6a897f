"""Schema migrations, configured in code (there is no alembic.ini)."""

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

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


def _upgrade_to_head(config: Config) -> None:
    with _upgrade_lock:
        command.upgrade(config, "head")


async def migrate(database_url: str) -> None:
    """Upgrades the database schema to the latest revision; a no-op when already there."""
    # The Alembic environment runs its own event loop, so it needs its own thread.
    await asyncio.to_thread(_upgrade_to_head, alembic_config(database_url))
