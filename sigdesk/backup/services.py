"""Create, verify and restore backups.

The database goes in as a logical dump (one JSON Lines file per table, rows in key order), taken
from a consistent snapshot: SQLite's online backup API copies the live file first; on MySQL one
REPEATABLE READ transaction reads every table. The same dump loads into either backend, which is
what lets an office move from SQLite to MySQL (and back). The data key goes in too, because
secret settings in the database are unreadable without it; the backup's passphrase protects it.

Restores never touch existing data: they build a new data dir beside the target (and load an
empty database), check every checksum and row count and that the data key opens the restored
secrets, and only then move the result into place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import orjson
from sqlalchemy import MetaData, Table, create_engine, event, func, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

import sigdesk.models  # noqa: F401  (every table in Base.metadata)
from sigdesk import __version__
from sigdesk.backup.format import (
    DEFAULT_CHUNK, FORMAT_VERSION, BackupError, DamagedBackup, DecryptingReader, EncryptingWriter, KdfParams,
    NewerBackup,
)
from sigdesk.config import Config, ConfigError, resource_root
from sigdesk.crypto import DataKeyError
from sigdesk.db import Base, Database, alembic_config

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

MANIFEST = "manifest.json"
KEY_MEMBER = "data.key"
DB_PREFIX = "database/"
MEDIA_PREFIX = "media/"
BATCH_ROWS = 1000
COPY_BLOCK = 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SIGDESK_EXTRA_TABLES = ("alembic_version",)


def _noop(_phase: str, _done: int, _total: int) -> None:
    pass


# ---- the logical dump -------------------------------------------------------------------------


def _kind(column) -> str:
    kind = column.type
    while isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return "text"
    for kind, cls in (("bool", bool), ("int", int), ("datetime", datetime), ("bytes", bytes), ("decimal", Decimal), ("float", float)):
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


def _dump_table(connection: Connection, table: Table, out: BinaryIO) -> int:
    """Straight from the driver (no ORM types): the dump costs little more than reading the rows."""
    quote = connection.dialect.identifier_preparer.quote
    columns = list(table.columns)
    converters = _converters([_kind(column) for column in columns], _encoder)
    order = [column.name for column in table.primary_key.columns] or [column.name for column in columns]
    sql = (f"SELECT {', '.join(quote(c.name) for c in columns)} FROM {quote(table.name)} "
           f"ORDER BY {', '.join(quote(name) for name in order)}")
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


def _dump_database(connection: Connection, folder: Path) -> dict[str, dict]:
    tables: dict[str, dict] = {}
    for table in Base.metadata.sorted_tables:
        with open(folder / f"{table.name}.jsonl", "wb") as out:
            rows = _dump_table(connection, table, out)
        tables[table.name] = {"rows": rows, "columns": [[column.name, _kind(column)] for column in table.columns]}
    return tables


def _sqlite_snapshot(database: Database, target: Path) -> Engine:
    """A consistent copy of the live file, taken without stopping writers (WAL lets them go on)."""
    raw = database.engine.raw_connection()
    try:
        copy = sqlite3.connect(target)
        try:
            raw.driver_connection.backup(copy)
        finally:
            copy.close()
    finally:
        raw.close()
    return create_engine(f"sqlite:///{target}")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _scripts(migrations_dir: Path):
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir))
    return ScriptDirectory.from_config(cfg)


def _media_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    root = data_dir / "media"
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(".incoming-"):
            yield MEDIA_PREFIX + path.relative_to(root).as_posix(), path


class _Hashing:
    """Reads through to a file while hashing and reporting progress, for tarfile.addfile."""

    def __init__(self, handle: BinaryIO, tick: Callable[[int], None]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.tick = tick

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.tick(len(data))
        return data


# ---- create -----------------------------------------------------------------------------------


def create(
    database: Database,
    config: Config,
    passphrase: str,
    out_path: Path,
    progress: Progress | None = None,
    kdf: KdfParams | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict:
    """Write one encrypted backup file and return its manifest. The file appears only when complete."""
    progress = progress or _noop
    out_path = Path(out_path)
    if out_path.exists():
        raise BackupError(f"{out_path} already exists; choose another file name")
    if not out_path.parent.is_dir():
        raise BackupError(f"The folder {out_path.parent} does not exist")
    engine = database.engine
    revision = current_revision(engine)
    head = _scripts(config.migrations_dir).get_current_head()
    if revision != head:
        raise BackupError(f"The database schema is at {revision}, not {head}; run `sigdesk db upgrade` first")
    if not config.data_key_file.exists():
        raise BackupError(f"The data key file {config.data_key_file} is missing; a backup without it could not be read")
    backend = engine.url.get_backend_name()

    with tempfile.TemporaryDirectory(prefix="sigdesk-backup-") as work:
        work_dir = Path(work)
        progress("snapshot", 0, 1)
        if backend == "sqlite":
            snapshot = _sqlite_snapshot(database, work_dir / "snapshot.db")
            try:
                with snapshot.connect() as connection:
                    tables = _dump_database(connection, work_dir)
            finally:
                snapshot.dispose()
            (work_dir / "snapshot.db").unlink()
        else:
            with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
                connection.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                tables = _dump_database(connection, work_dir)
        progress("snapshot", 1, 1)

        members: list[tuple[str, Path]] = [(KEY_MEMBER, config.data_key_file)]
        members += [(DB_PREFIX + f"{name}.jsonl", work_dir / f"{name}.jsonl") for name in tables]
        members += list(_media_files(config.data_dir))
        total = sum(path.stat().st_size for _name, path in members)
        done = 0

        def tick(count: int) -> None:
            nonlocal done
            done += count
            progress("backup", done, total)

        partial = out_path.with_name(out_path.name + ".partial")
        listed: dict[str, dict] = {}
        media_bytes = 0
        try:
            with open(partial, "wb") as sink:
                writer = EncryptingWriter(sink, passphrase, kdf, chunk_size)
                with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT, bufsize=COPY_BLOCK, copybufsize=COPY_BLOCK) as tar:
                    for name, path in members:
                        with open(path, "rb") as handle:
                            info = tarfile.TarInfo(name)
                            info.size = os.fstat(handle.fileno()).st_size
                            info.mode = 0o600
                            hashing = _Hashing(handle, tick)
                            tar.addfile(info, hashing)
                        listed[name] = {"size": info.size, "sha256": hashing.digest.hexdigest()}
                        if name.startswith(MEDIA_PREFIX):
                            media_bytes += info.size
                    manifest = {
                        "format": FORMAT_VERSION,
                        "sigdesk_version": __version__,
                        "alembic_revision": revision,
                        "created_at": datetime.now(timezone.utc).isoformat(),
                        "source_backend": backend,
                        "tables": tables,
                        "table_order": list(tables),
                        "media": {"files": sum(1 for n in listed if n.startswith(MEDIA_PREFIX)), "bytes": media_bytes},
                        "members": listed,
                    }
                    body = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
                    info = tarfile.TarInfo(MANIFEST)
                    info.size = len(body)
                    info.mode = 0o600
                    tar.addfile(info, _BytesReader(body))
                writer.close()
                sink.flush()
                os.fsync(sink.fileno())
            os.chmod(partial, 0o600)
            os.replace(partial, out_path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    log.info("backup written: %s (%d bytes of data)", out_path, total)
    return manifest


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.at + size
        chunk = bytes(self.data[self.at : end])
        self.at += len(chunk)
        return chunk


# ---- reading a backup -------------------------------------------------------------------------


class _Counting:
    def __init__(self, handle: BinaryIO, progress: Progress, phase: str, total: int) -> None:
        self.handle, self.progress, self.phase, self.total, self.done = handle, progress, phase, total, 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.done += len(data)
        self.progress(self.phase, self.done, self.total)
        return data


def _member_name(info: tarfile.TarInfo) -> str:
    name = info.name
    path = PurePosixPath(name)
    if not info.isfile() or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise DamagedBackup(f"The backup holds an unexpected entry {name!r}; it was not made by SigDesk")
    if name in (MANIFEST, KEY_MEMBER) or name.startswith(MEDIA_PREFIX):
        return name
    if name.startswith(DB_PREFIX) and name.endswith(".jsonl") and _TABLE_NAME.match(name[len(DB_PREFIX) : -6]):
        return name
    raise DamagedBackup(f"The backup holds an unexpected entry {name!r}; it was not made by SigDesk")


def _read_backup(path: Path, passphrase: str, sink_for: Callable[[str], BinaryIO | None], progress: Progress, phase: str) -> dict:
    """Decrypt the whole file, hand each member to its sink, and check it all against the manifest."""
    path = Path(path)
    try:
        total = path.stat().st_size
        handle = open(path, "rb")
    except OSError as exc:
        raise BackupError(f"Cannot read the backup file {path}: {exc.strerror or exc}") from exc
    seen: dict[str, tuple[int, str, int]] = {}
    manifest = None
    with handle:
        reader = DecryptingReader(_Counting(handle, progress, phase, total), passphrase)
        try:
            with tarfile.open(fileobj=reader, mode="r|", bufsize=COPY_BLOCK, copybufsize=COPY_BLOCK) as tar:
                for info in tar:
                    name = _member_name(info)
                    if manifest is not None or name in seen:
                        raise DamagedBackup("The backup's contents are out of order; it was not made by SigDesk")
                    source = tar.extractfile(info)
                    if name == MANIFEST:
                        if info.size > MAX_MANIFEST_BYTES:
                            raise DamagedBackup("The backup's manifest is implausibly large")
                        manifest = json.loads(source.read())
                        continue
                    digest, lines, size = hashlib.sha256(), 0, 0
                    sink = sink_for(name)
                    try:
                        while block := source.read(COPY_BLOCK):
                            digest.update(block)
                            size += len(block)
                            lines += block.count(b"\n")
                            if sink is not None:
                                sink.write(block)
                    finally:
                        if sink is not None:
                            sink.close()
                    seen[name] = (size, digest.hexdigest(), lines)
            reader.drain()
        except tarfile.TarError as exc:
            raise DamagedBackup(f"The backup's contents are damaged: {exc}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise DamagedBackup("The backup's manifest is damaged") from exc
    if not isinstance(manifest, dict):
        raise DamagedBackup("The backup has no manifest; it is incomplete")
    _check_against_manifest(manifest, seen)
    return manifest


def _check_against_manifest(manifest: dict, seen: dict[str, tuple[int, str, int]]) -> None:
    listed = manifest.get("members") or {}
    if set(listed) != set(seen):
        missing = sorted(set(listed) - set(seen))[:3]
        raise DamagedBackup(f"The backup's contents do not match its manifest (missing or extra: {missing or sorted(set(seen) - set(listed))[:3]})")
    for name, entry in listed.items():
        size, digest, _lines = seen[name]
        if entry.get("size") != size or entry.get("sha256") != digest:
            raise DamagedBackup(f"The backup's checksum for {name} does not match")
    for table, entry in (manifest.get("tables") or {}).items():
        member = f"{DB_PREFIX}{table}.jsonl"
        if member not in seen or seen[member][2] != entry.get("rows"):
            raise DamagedBackup(f"The backup's row count for {table} does not match")


def verify(path: Path, passphrase: str, progress: Progress | None = None) -> dict:
    """Decrypt and check everything without writing anything; returns the manifest."""
    return _read_backup(path, passphrase, lambda _name: None, progress or _noop, "verify")


def check_restorable(manifest: dict, migrations_dir: Path) -> None:
    """Refuse a backup whose schema this SigDesk does not know (it was made by a newer one)."""
    from alembic.util import CommandError

    if int(manifest.get("format", 0)) > FORMAT_VERSION:
        raise NewerBackup("This backup was made by a newer SigDesk; update SigDesk, then restore it")
    revision = manifest.get("alembic_revision")
    try:
        known = revision is not None and _scripts(migrations_dir).get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise NewerBackup(
            f"This backup was made by a newer SigDesk (version {manifest.get('sigdesk_version')}, schema {revision}); "
            f"this is SigDesk {__version__}. Update SigDesk, then restore it."
        )


# ---- restore ----------------------------------------------------------------------------------


def _require_empty_dir(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(f"{path} is not empty; restore needs a new or empty folder (your current data is never overwritten)")


def _prepare_empty_database(engine: Engine) -> None:
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
    names = [name for name, _kind in columns]
    unknown = [name for name in names if name not in table.columns]
    if unknown:
        raise BackupError(f"Table {table.name} in the backup has columns this schema lacks: {unknown}")
    converters = _converters([kind for _name, kind in columns], _decoder)
    quote = connection.dialect.identifier_preparer.quote
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
           f"VALUES ({', '.join([mark] * len(names))})")
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


def _load_database(database: Database, manifest: dict, dump_dir: Path, migrations_dir: Path, progress: Progress) -> None:
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


def _check_data_key(database: Database, key_file: Path) -> None:
    from sigdesk.settings.services import open_cipher

    try:
        with database.session() as session:
            open_cipher(session, key_file)
    except DataKeyError as exc:
        raise DamagedBackup(f"The data key in the backup does not open the restored database: {exc}") from exc


def restore(
    path: Path,
    passphrase: str,
    target_data_dir: Path,
    target_database_url: str | None = None,
    progress: Progress | None = None,
    migrations_dir: Path | None = None,
) -> dict:
    """Restore into a new (or empty) data dir and an empty database; on any failure nothing is left behind.

    With no database URL the database is SQLite, sigdesk.db inside the new data dir."""
    progress = progress or _noop
    migrations_dir = migrations_dir or resource_root() / "migrations"
    target = Path(target_data_dir).absolute()
    _require_empty_dir(target)
    if not target.parent.is_dir():
        raise BackupError(f"The folder {target.parent} does not exist")
    staging = target.parent / f".{target.name}.restoring-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    database: Database | None = None
    external_sqlite: Path | None = None
    loading = False
    try:
        dump_dir = staging / ".restore-dump"
        dump_dir.mkdir()
        manifest = _read_backup(path, passphrase, _extractor(staging, dump_dir), progress, "decrypt")
        check_restorable(manifest, migrations_dir)
        url = target_database_url or f"sqlite:///{staging / 'sigdesk.db'}"
        if target_database_url:
            sqlite_file = _sqlite_file(target_database_url)
            if sqlite_file is not None:
                if sqlite_file.exists() and sqlite_file.stat().st_size:
                    raise BackupError(f"The database file {sqlite_file} already exists; restore needs a new one")
                external_sqlite = sqlite_file
        try:
            database = Database(url)
            database.check_connection()
        except ConfigError as exc:
            raise BackupError(str(exc)) from exc
        if target_database_url:
            _prepare_empty_database(database.engine)
        loading = True
        _load_database(database, manifest, dump_dir, migrations_dir, progress)
        _check_data_key(database, staging / KEY_MEMBER)
        shutil.rmtree(dump_dir)
        database.dispose()
        database = None
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        if database is not None:
            if loading and target_database_url and not external_sqlite:
                _cleanup_database(database.engine)
            database.dispose()
        if loading and external_sqlite is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(external_sqlite) + suffix).unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("backup restored into %s", target)
    return manifest


def _sqlite_file(url: str) -> Path | None:
    from sigdesk.db import parse_url

    try:
        parsed = parse_url(url)
    except ConfigError as exc:
        raise BackupError(str(exc)) from exc
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def _cleanup_database(engine: Engine) -> None:
    try:
        _drop_sigdesk_tables(engine)
    except Exception:  # noqa: BLE001 - the original error matters more; say what is left
        log.exception("could not remove the partly restored tables; drop them by hand before retrying")


def _extractor(staging: Path, dump_dir: Path) -> Callable[[str], BinaryIO | None]:
    def sink_for(name: str) -> BinaryIO | None:
        if name == KEY_MEMBER:
            destination = staging / KEY_MEMBER
        elif name.startswith(DB_PREFIX):
            destination = dump_dir / name[len(DB_PREFIX) :]
        else:
            destination = staging / name
            if staging.resolve() not in destination.resolve().parents:
                raise DamagedBackup(f"The backup holds an unsafe path {name!r}")
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(fd, "wb")

    return sink_for


def restore_in_place(
    path: Path,
    passphrase: str,
    data_dir: Path,
    database_url: str | None = None,
    progress: Progress | None = None,
    migrations_dir: Path | None = None,
) -> tuple[dict, Path | None]:
    """Replace a data dir with a backup: restored beside it, then swapped in by rename once verified.

    Returns (manifest, where the previous data dir was moved); the old data is kept, never deleted."""
    data_dir = Path(data_dir).absolute()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    fresh = data_dir.with_name(f"{data_dir.name}.restored-{stamp}")
    manifest = restore(path, passphrase, fresh, database_url, progress, migrations_dir)
    if not data_dir.exists():
        os.replace(fresh, data_dir)
        return manifest, None
    previous = data_dir.with_name(f"{data_dir.name}.before-restore-{stamp}")
    os.replace(data_dir, previous)
    try:
        os.replace(fresh, data_dir)
    except OSError:
        os.replace(previous, data_dir)
        raise
    return manifest, previous
