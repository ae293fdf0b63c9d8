"""The logical dump: every table as JSON Lines, loadable into SQLite or MySQL alike.

A MySQL backup holds its database this way, as did every backup of format 1; restoring a SQLite
database file into MySQL goes through it too. Values come straight from the driver (no ORM types),
so dumping costs little more than reading the rows.
"""

from __future__ import annotations

import base64
import os
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import MetaData, Table, create_engine, event, func, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

import sigdesk.models  # noqa: F401  (every table in Base.metadata)
from sigdesk.backup.format import BackupError, DamagedBackup
from sigdesk.db import Base, Database, alembic_config
from sigdesk.search import fts

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

BATCH_ROWS = 1000
_SIGDESK_EXTRA_TABLES = ("alembic_version", "message_grams")  # message_grams: MySQL search n-grams (migration 0009)


def column_kind(column) -> str:
    kind = column.type
    while isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return "text"
    for kind, cls in (
        ("bool", bool),
        ("int", int),
        ("datetime", datetime),
        ("bytes", bytes),
        ("decimal", Decimal),
        ("float", float),
    ):
        if issubclass(python_type, cls):
            return kind
    return "text"


def _encoder(kind: str) -> Callable[[Any], Any] | None:
    """Driver values to JSON: datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC), bytes as base64, the rest as is."""
    if kind == "datetime":

        def from_datetime(value):
            if value is None:
                return None
            if isinstance(value, str):  # SQLite keeps SQLAlchemy's own text form
                return value if len(value) == 26 else _canonical_datetime(value)
            return value.isoformat(sep=" ", timespec="microseconds")

        return from_datetime
    if kind == "bytes":
        return lambda value: None if value is None else base64.b64encode(value).decode("ascii")
    if kind == "decimal":
        return lambda value: None if value is None else str(value)
    return None


def _canonical_datetime(text: str) -> str:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed.isoformat(sep=" ", timespec="microseconds")


def _decoder(kind: str) -> Callable[[Any], Any] | None:
    """JSON to driver parameters; both SQLite and MySQL take the canonical datetime text directly."""
    if kind == "datetime":
        return lambda value: value if value is None or len(value) == 26 else _canonical_datetime(value)
    if kind == "bytes":
        return lambda value: None if value is None else base64.b64decode(value)
    return None


def _converters(kinds: list[str], make) -> list[tuple[int, Callable[[Any], Any]]]:
    return [(index, fn) for index, kind in enumerate(kinds) if (fn := make(kind)) is not None]


def _dump_table(connection: Connection, name: str, columns: list[list[str]], order: list[str], out: BinaryIO) -> int:
    """Straight from the driver (no ORM types): the dump costs little more than reading the rows.

    columns are [name, kind] pairs; order is the primary key (rows in key order load in the same order)."""
    quote = connection.dialect.identifier_preparer.quote
    converters = _converters([kind for _column, kind in columns], _encoder)
    sql = (
        f"SELECT {', '.join(quote(column) for column, column_kind in columns)} FROM {quote(name)} "
        f"ORDER BY {', '.join(quote(column) for column in order or [c for c, _k in columns])}"
    )
    result = connection.execution_options(stream_results=True).exec_driver_sql(sql)
    dumps = orjson.dumps
    rows = 0
    for partition in result.partitions(BATCH_ROWS):
        lines = []
        for row in partition:
            values = list(row)
            for index, convert in converters:
                values[index] = convert(values[index])
            lines.append(dumps(values))
        if lines:
            lines.append(b"")
            out.write(b"\n".join(lines))
            rows += len(lines) - 1
    return rows


def dump_database(connection: Connection, folder: Path, tables: dict[str, dict] | None = None) -> dict[str, dict]:
    """Every table as JSON Lines: SigDesk's tables, or those a manifest lists (a restored older snapshot)."""
    if tables is None:
        tables = {
            table.name: {"columns": [[column.name, column_kind(column)] for column in table.columns]}
            for table in Base.metadata.sorted_tables
        }
    keys = inspect(connection)
    dumped: dict[str, dict] = {}
    for name, entry in tables.items():
        order = keys.get_pk_constraint(name).get("constrained_columns") or []
        with open(folder / f"{name}.jsonl", "wb") as out:
            rows = _dump_table(connection, name, entry["columns"], order, out)
        dumped[name] = {"rows": rows, "columns": entry["columns"]}
    return dumped


def prepare_empty_database(engine: Engine) -> None:
    """Refuse a database that holds any row; drop SigDesk's own empty tables so migrations start clean."""
    names = inspect(engine).get_table_names()
    with engine.connect() as connection:
        for name in names:
            count = connection.execute(select(func.count()).select_from(Table(name, MetaData()))).scalar_one()
            if count and name != "alembic_version":
                raise BackupError(
                    f"The target database already holds data (table {name} has {count} rows); "
                    "restore needs an empty database"
                )
    _drop_sigdesk_tables(engine)


def _drop_sigdesk_tables(engine: Engine) -> None:
    ours = set(Base.metadata.tables) | set(_SIGDESK_EXTRA_TABLES)
    present = [name for name in inspect(engine).get_table_names() if name in ours]
    if present:
        meta = MetaData()
        meta.reflect(engine, only=present)
        meta.drop_all(engine)


def _load_table(connection: Connection, table: Table, columns: list[list[str]], source: Path) -> int:
    names = [name for name, column_kind in columns]
    unknown = [name for name in names if name not in table.columns]
    if unknown:
        raise BackupError(f"Table {table.name} in the backup has columns this schema lacks: {unknown}")
    converters = _converters([kind for _name, kind in columns], _decoder)
    quote = connection.dialect.identifier_preparer.quote
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
        f"VALUES ({', '.join([mark] * len(names))})"
    )
    loads = orjson.loads
    rows, batch = 0, []
    with open(source, "rb") as handle:
        for line in handle:
            values = loads(line)
            for index, convert in converters:
                values[index] = convert(values[index])
            batch.append(tuple(values))
            if len(batch) >= BATCH_ROWS:
                connection.exec_driver_sql(sql, batch)
                rows += len(batch)
                batch = []
    if batch:
        connection.exec_driver_sql(sql, batch)
        rows += len(batch)
    return rows


def _bulk_loader(database: Database) -> Engine:
    """On a new SQLite file, load without a journal: a failed restore throws the file away anyway,
    and WAL would write every page twice. The file is fsynced and back in WAL mode before use."""
    if database.engine.dialect.name != "sqlite":
        return database.engine
    database.engine.dispose()
    engine = create_engine(database.engine.url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def fast(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-131072", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


def load_database(database: Database, manifest: dict, dump_dir: Path, migrations_dir: Path, progress: Progress) -> None:
    from alembic import command

    command.upgrade(alembic_config(database, migrations_dir), manifest["alembic_revision"])
    meta = MetaData()
    meta.reflect(database.engine)
    tables = manifest["tables"]
    total = sum(entry["rows"] for entry in tables.values())
    done = 0
    progress("load", 0, total)
    engine = _bulk_loader(database)
    try:
        for name in manifest["table_order"]:
            entry = tables[name]
            if name not in meta.tables:
                raise BackupError(f"The backup has a table {name} that its schema revision does not create")
            with engine.begin() as connection:
                # Rows a migration seeded (default stages, ...) give way to the backup's own.
                connection.execute(meta.tables[name].delete())
                loaded = _load_table(connection, meta.tables[name], entry["columns"], dump_dir / f"{name}.jsonl")
                count = connection.execute(select(func.count()).select_from(meta.tables[name])).scalar_one()
            if loaded != entry["rows"] or count != entry["rows"]:
                raise DamagedBackup(f"Table {name}: the backup lists {entry['rows']} rows but {count} were restored")
            done += loaded
            progress("load", done, total)
    finally:
        if engine is not database.engine:
            engine.dispose()
    if database.engine.dialect.name == "sqlite" and database.engine.url.database:
        with open(database.engine.url.database, "rb+") as handle:
            os.fsync(handle.fileno())
    command.upgrade(alembic_config(database, migrations_dir), "head")
    if database.engine.dialect.name != "sqlite":  # SQLite's triggers indexed the rows as they were loaded
        with database.engine.begin() as connection:
            fts.rebuild(connection)


def snapshot_to_dump(snapshot: Path, dump_dir: Path, manifest: dict) -> None:
    """A database file restored into MySQL goes through the same logical dump a MySQL backup holds."""
    engine = create_engine(f"sqlite:///{snapshot}", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            tables = {name: manifest["tables"][name] for name in manifest["table_order"]}
            dump_database(connection, dump_dir, tables)
    finally:
        engine.dispose()


def cleanup_database(engine: Engine) -> None:
    try:
        _drop_sigdesk_tables(engine)
    except Exception:  # noqa: BLE001 - the original error matters more; say what is left
        log.exception("could not remove the partly restored tables; drop them by hand before retrying")
