"""Command line: `python -m store migrate` prepares the database for the app."""

import argparse
import asyncio

from sqlalchemy import make_url

from runtime.settings import get_settings
from store.seed import migrate_and_seed


def main() -> None:
    """Runs the command named on the command line."""
    parser = argparse.ArgumentParser(prog="python -m store")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the schema to head and seed the example SOPs")
    parser.parse_args()

    database_url = get_settings().database_url
    added = asyncio.run(migrate_and_seed(database_url))
    where = make_url(database_url).render_as_string(hide_password=True)
    seeded = ", ".join(added) if added else "none"
    print(f"migrated {where} to head; example SOPs added: {seeded}")  # noqa: T201 (CLI output)


if __name__ == "__main__":
    main()
