"""The SQLite database as a file: a consistent snapshot for a backup, and the checks on a restored one."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import sigdesk.models  # noqa: F401  (every table in Base.metadata)
from sigdesk.backup.dump import column_kind
from sigdesk.backup.format import BackupError, DamagedBackup
from sigdesk.db import Base, Database

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def snapshot(database: Database, target: Path) -> None:
    """A consistent copy of the live file, taken without stopping writers (WAL lets them go on).

    One step copies every page under a single read transaction, so concurrent writes cannot make it
    start over. (Reading through mmap would be a little faster, but every mapped page counts as the
    process's memory, and a backup should not look like it takes the database's size in RAM.)"""
    raw = database.engine.raw_connection()
    try:
        copy = sqlite3.connect(target)
        try:
            # A throwaway file: no journal, no fsync (its checksum in the backup is what counts).
            copy.execute("PRAGMA journal_mode=OFF")
            copy.execute("PRAGMA synchronous=OFF")
            raw.driver_connection.backup(copy, pages=-1)
        finally:
            copy.close()
    finally:
        raw.close()


def table_counts(path: Path) -> dict[str, dict]:
    """Row counts and columns of every SigDesk table in a snapshot: the manifest's record of what it holds."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        present = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables = {}
        for table in Base.metadata.sorted_tables:
            if table.name not in present:
                raise BackupError(f"The database has no table {table.name}; run `sigdesk db upgrade` first")
            (rows,) = connection.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()
            tables[table.name] = {
                "rows": rows,
                "columns": [[column.name, column_kind(column)] for column in table.columns],
            }
        return tables
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"The database cannot be read, so it cannot be backed up: {exc}") from exc
    finally:
        connection.close()


def sync_and_inspect(path: Path) -> tuple[list[str], str | None, dict[str, int]]:
    """The restored database file on disk, then checked: it is switched to only after both."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return _inspect_sqlite(path)


def _inspect_sqlite(path: Path) -> tuple[list[str], str | None, dict[str, int]]:
    """(quick_check's findings, schema revision, row counts) of a restored database file, read-only."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = None
        if "alembic_version" in tables:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        counts = {
            name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in tables
            if _TABLE_NAME.match(name)
        }
        return problems, revision, counts
    except sqlite3.DatabaseError as exc:
        return [str(exc)], None, {}
    finally:
        connection.close()


def check(inspected: tuple[list[str], str | None, dict[str, int]] | None, manifest: dict) -> None:
    if inspected is None:
        raise DamagedBackup("The backup's database file is missing")
    problems, revision, counts = inspected
    if problems != ["ok"]:
        raise DamagedBackup(f"The restored database fails SQLite's check: {'; '.join(problems[:3])}")
    if revision != manifest.get("alembic_revision"):
        raise DamagedBackup(
            f"The restored database is at schema {revision}, but the backup lists {manifest.get('alembic_revision')}"
        )
    for table, entry in (manifest.get("tables") or {}).items():
        if counts.get(table) != entry.get("rows"):
            raise DamagedBackup(
                f"Table {table}: the backup lists {entry.get('rows')} rows but {counts.get(table)} were restored"
            )
