"""The relay's database: opened with SigDesk's engine settings, upgraded by its own Alembic history.

The history lives inside this package, so an installed relay (pip install, Docker) carries it.
"""

from __future__ import annotations

from pathlib import Path

from sigdesk.db import Database, alembic_config

VERSION_TABLE = "relay_alembic_version"


def migrations_dir() -> Path:
    return Path(__file__).resolve().parent / "migrations"


def open_relay_database(url: str) -> Database:
    """Open and bring the schema up to date, so a relay upgrade works in place on its existing data."""
    from alembic import command

    database = Database(url)
    try:
        database.check_connection()
        command.upgrade(alembic_config(database, migrations_dir()), "head")
    except BaseException:
        database.dispose()
        raise
    return database
