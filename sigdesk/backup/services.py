"""Create, verify and restore backups.

On SQLite the database goes in as the file itself: a snapshot by SQLite's online backup API, which
restores by writing it back (checked by its checksum, SQLite's quick_check and every row count).
On MySQL it goes in as a logical dump (dump.py) taken in one REPEATABLE READ transaction. Either
restores into either backend, which is what lets an office move from SQLite to MySQL (and back).
The data key goes in too, because secret settings in the database are unreadable without it; the
backup's passphrase protects it.

Restores never touch existing data: they build a new data dir beside the target (and load an
empty database), check every checksum and row count and that the data key opens the restored
secrets, and only then move the result into place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from sigdesk import __version__, datadir
from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.backup import dump, sqlite_copy
from sigdesk.backup.archive import BLOCK, ArchiveWriter, Pipeline, Pipelined, entries
from sigdesk.backup.format import (
    DEFAULT_CHUNK,
    FORMAT_VERSION,
    BackupError,
    DamagedBackup,
    DecryptingReader,
    EncryptingWriter,
    KdfParams,
    NewerBackup,
    sealing_key,
)
from sigdesk.config import Config, ConfigError, resource_root
from sigdesk.crypto import DataKeyError
from sigdesk.db import Database, alembic_config, write_lock
from sigdesk.events.catalogue import BackupFinished
from sigdesk.events.outbox import record

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

MANIFEST = "manifest.json"
KEY_MEMBER = "data.key"
DB_PREFIX = "database/"
DB_FILE_MEMBER = "database/sigdesk.db"
MEDIA_PREFIX = "media/"
COPY_BLOCK = 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def _noop(_phase: str, _done: int, _total: int) -> None:
    pass


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


class _Sink:
    """The backup file: starts writing each stretch to disk as it goes, so the closing fsync has little left to wait for."""

    EVERY = 64 * 1024 * 1024

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.written = 0
        self.started = 0

    def write(self, data) -> int:
        count = self.handle.write(data)
        self.written += count
        if self.written - self.started >= self.EVERY and hasattr(os, "posix_fadvise"):
            self.handle.flush()
            os.posix_fadvise(self.handle.fileno(), self.started, self.written - self.started, os.POSIX_FADV_DONTNEED)
            self.started = self.written
        return count

    def flush(self) -> None:
        self.handle.flush()


# ---- run: the command -------------------------------------------------------------------------


def run(
    database: Database,
    config: Config,
    actor: Actor,
    passphrase: str,
    out_path: Path,
    progress: Progress | None = None,
    kdf: KdfParams | None = None,
) -> dict:
    """One backup run, whoever asked (the Backups page, `sigdesk backup create`, the schedule): audited
    when it starts and when it ends, ending in backup.finished either way. Returns the manifest."""
    out_path = Path(out_path)
    _note(database, actor, "backup.started", out_path.name)
    try:
        manifest = create(database, config, passphrase, out_path, progress, kdf)
    except BaseException as exc:
        failed(database, actor, out_path.name, exc)
        raise
    _note(database, actor, "backup.created", out_path.name, BackupFinished(True, out_path.name))
    return manifest


def failed(database: Database, actor: Actor, file: str | None, exc: BaseException) -> None:
    """Record a run that ended in `exc` (or could not start: no folder or passphrase set)."""
    error = str(exc) if isinstance(exc, BackupError) else "The backup failed; the details are in the log."
    _note(database, actor, "backup.failed", file, BackupFinished(False, file), error=error)


def downloaded(session: Session, actor: Actor, name: str) -> None:
    """A backup file is about to leave the machine: who took it is audited."""
    record_by(session, actor, "backup.downloaded", name)


def delete_file(session: Session, actor: Actor, path: Path) -> None:
    path.unlink()
    record_by(session, actor, "backup.deleted", path.name)


def _note(
    database: Database, actor: Actor, action: str, file: str | None, event: BackupFinished | None = None, **detail
) -> None:
    with write_lock(database.engine), database.session() as session:
        record_by(session, actor, action, file, detail or None)
        if event is not None:
            record(session, event)


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
    """Write one encrypted backup file and return its manifest. The file appears only when complete.

    On SQLite the database goes in as the file itself (a snapshot by the online backup API, taken
    while scrypt derives the key on another core); on MySQL as a logical dump of every table."""
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
    if not passphrase:
        raise BackupError("The backup passphrase must not be empty")
    backend = engine.url.get_backend_name()

    with (
        tempfile.TemporaryDirectory(prefix=".backup-", dir=config.data_dir) as work,
        ThreadPoolExecutor(1, thread_name_prefix="sigdesk-backup-hash") as helper,
        ThreadPoolExecutor(1, thread_name_prefix="sigdesk-backup-write") as writes,
    ):
        work_dir = Path(work)
        progress("snapshot", 0, 1)
        keying = helper.submit(sealing_key, passphrase, kdf, chunk_size)
        if backend == "sqlite":
            snapshot = work_dir / "sigdesk.db"
            sqlite_copy.snapshot(database, snapshot)
            tables = sqlite_copy.table_counts(snapshot)
            database_kind = "sqlite"
            db_members = [(DB_FILE_MEMBER, snapshot)]
        else:
            with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
                connection.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                tables = dump.dump_database(connection, work_dir)
            database_kind = "logical"
            db_members = [(DB_PREFIX + f"{name}.jsonl", work_dir / f"{name}.jsonl") for name in tables]
        sealed = keying.result()
        progress("snapshot", 1, 1)

        members: list[tuple[str, Path]] = [
            (KEY_MEMBER, config.data_key_file),
            *db_members,
            *_media_files(config.data_dir),
        ]
        total = sum(_size(path) for _name, path in members)
        done = 0

        def tick(count: int) -> None:
            nonlocal done
            done += count
            progress("backup", done, total)

        partial = out_path.with_name(out_path.name + ".partial")
        media_bytes = 0
        try:
            with open(partial, "wb") as handle:
                hashing = Pipeline(helper)
                writer = EncryptingWriter(Pipelined(_Sink(handle), Pipeline(writes)), sealed)
                archive = ArchiveWriter(writer, hashing)
                digests = {}
                for name, path in members:
                    try:
                        source = open(path, "rb")
                    except FileNotFoundError:
                        if name.startswith(MEDIA_PREFIX):  # deleted by retention since the listing
                            continue
                        raise
                    with source:
                        size = os.fstat(source.fileno()).st_size
                        digests[name] = (size, archive.add_file(name, source, size, tick))
                    if path.parent == work_dir:
                        hashing.submit(path.unlink)  # freeing a big file's blocks takes a while; not on this thread
                    if name.startswith(MEDIA_PREFIX):
                        media_bytes += size
                hashing.wait()
                listed = {name: {"size": size, "sha256": digest.result()} for name, (size, digest) in digests.items()}
                manifest = {
                    "format": FORMAT_VERSION,
                    "sigdesk_version": __version__,
                    "alembic_revision": revision,
                    "created_at": datetime.now(timezone.utc).isoformat(),
                    "source_backend": backend,
                    "database": database_kind,
                    "tables": tables,
                    "table_order": list(tables),
                    "media": {"files": sum(1 for n in listed if n.startswith(MEDIA_PREFIX)), "bytes": media_bytes},
                    "members": listed,
                }
                archive.add_bytes(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
                archive.close()
                writer.close()
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(partial, 0o600)
            os.replace(partial, out_path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    log.info("backup written: %s (%d bytes of data)", out_path, total)
    return manifest


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


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
    if name in (MANIFEST, KEY_MEMBER, DB_FILE_MEMBER) or name.startswith(MEDIA_PREFIX):
        return name
    if name.startswith(DB_PREFIX) and name.endswith(".jsonl") and _TABLE_NAME.match(name[len(DB_PREFIX) : -6]):
        return name
    raise DamagedBackup(f"The backup holds an unexpected entry {name!r}; it was not made by SigDesk")


def _read_backup(
    path: Path,
    passphrase: str,
    sink_for: Callable[[str], BinaryIO | None],
    progress: Progress,
    phase: str,
    member_done: Callable[[str], None] = lambda _name: None,
) -> dict:
    """Decrypt the whole file, hand each member to its sink, and check it all against the manifest.

    member_done(name) is called once a member is written out (its checksum is checked later, with the rest)."""
    path = Path(path)
    try:
        total = path.stat().st_size
        handle = open(path, "rb")
    except OSError as exc:
        raise BackupError(f"Cannot read the backup file {path}: {exc.strerror or exc}") from exc
    with handle:
        reader = DecryptingReader(_Counting(handle, progress, phase, total), passphrase, record=BLOCK)
        if reader.header.version == 1:
            manifest, seen = _read_tar_v1(reader, sink_for)
        else:
            with (
                ThreadPoolExecutor(1, thread_name_prefix="sigdesk-restore-hash") as helper,
                ThreadPoolExecutor(1, thread_name_prefix="sigdesk-restore-write") as writes,
            ):
                manifest, seen = _read_members(reader, sink_for, helper, writes, member_done)
    if not isinstance(manifest, dict):
        raise DamagedBackup("The backup has no manifest; it is incomplete")
    _check_against_manifest(manifest, seen)
    return manifest


def _read_members(reader: DecryptingReader, sink_for, helper, writes, member_done) -> tuple[dict | None, dict]:
    results = {}
    manifest = None
    hashing, writing = Pipeline(helper), Pipeline(writes)
    try:
        for entry in entries(reader.chunks(), _member_name):
            name = entry.name
            if manifest is not None or name in results:
                raise DamagedBackup("The backup's contents are out of order; it was not made by SigDesk")
            if name == MANIFEST:
                if entry.size > MAX_MANIFEST_BYTES:
                    raise DamagedBackup("The backup's manifest is implausibly large")
                manifest = json.loads(entry.read_all())
                continue
            target = sink_for(name)
            sink = Pipelined(target, writing) if target is not None else None
            results[name] = (entry.size, entry.copy_to(sink, hashing, count_lines=name.endswith(".jsonl")))
            if sink is not None:
                sink.close_later(then=lambda name=name: member_done(name))
        reader.drain()
        hashing.wait()
        writing.wait()
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedBackup("The backup's manifest is damaged") from exc
    return manifest, {name: (size, *result.result()) for name, (size, result) in results.items()}


def _read_tar_v1(reader: DecryptingReader, sink_for) -> tuple[dict | None, dict]:
    """Format 1 went through tarfile; read it the same way so old backups restore unchanged."""
    seen: dict[str, tuple[int, str, int]] = {}
    manifest = None
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
    return manifest, seen


def _check_against_manifest(manifest: dict, seen: dict[str, tuple[int, str, int]]) -> None:
    listed = manifest.get("members") or {}
    if set(listed) != set(seen):
        missing = sorted(set(listed) - set(seen))[:3]
        raise DamagedBackup(
            f"The backup's contents do not match its manifest (missing or extra: {missing or sorted(set(seen) - set(listed))[:3]})"
        )
    for name, entry in listed.items():
        size, digest, _lines = seen[name]
        if entry.get("size") != size or entry.get("sha256") != digest:
            raise DamagedBackup(f"The backup's checksum for {name} does not match")
    if _database_kind(manifest) == "logical":
        for table, entry in (manifest.get("tables") or {}).items():
            member = f"{DB_PREFIX}{table}.jsonl"
            if member not in seen or seen[member][2] != entry.get("rows"):
                raise DamagedBackup(f"The backup's row count for {table} does not match")
    elif DB_FILE_MEMBER not in seen:
        raise DamagedBackup("The backup's database file is missing")


def _database_kind(manifest: dict) -> str:
    """'sqlite' (the database file) or 'logical' (JSON Lines per table; all that format 1 knew)."""
    kind = manifest.get("database", "logical")
    if kind not in ("sqlite", "logical"):
        raise NewerBackup("This backup stores its database in a way this SigDesk does not know; update SigDesk")
    return kind


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
        raise BackupError(
            f"{path} is not empty; restore needs a new or empty folder (your current data is never overwritten)"
        )


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

    With no database URL the database is SQLite, sigdesk.db inside the new data dir. A database file
    in the backup is written straight to its place when the target is SQLite and checked there (the
    backup's checksum, SQLite's quick_check, every row count); for MySQL it is loaded table by table."""
    progress = progress or _noop
    migrations_dir = migrations_dir or resource_root() / "migrations"
    target = Path(target_data_dir).absolute()
    _require_empty_dir(target)
    if not target.parent.is_dir():
        raise BackupError(f"The folder {target.parent} does not exist")
    sqlite_file = staging_file = None
    if target_database_url:
        sqlite_file = _sqlite_file(target_database_url)
        if sqlite_file is not None and sqlite_file.exists() and sqlite_file.stat().st_size:
            raise BackupError(f"The database file {sqlite_file} already exists; restore needs a new one")
    staging = target.parent / f".{target.name}.restoring-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    database: Database | None = None
    created_sqlite = False
    loading = False
    checks = ThreadPoolExecutor(1, thread_name_prefix="sigdesk-restore-check")
    checked = None
    try:
        dump_dir = staging / ".restore-dump"
        dump_dir.mkdir()
        if not target_database_url:
            staging_file = staging / "sigdesk.db"
        elif sqlite_file is not None:
            staging_file = sqlite_file
        file_target = staging_file or dump_dir / "snapshot.db"

        def sink_for(name: str) -> BinaryIO | None:
            nonlocal created_sqlite
            if name != DB_FILE_MEMBER:
                return extract(name)
            created_sqlite = file_target == sqlite_file
            # An empty file named by --into-database-url may already be there (checked above).
            flags = os.O_TRUNC if created_sqlite else os.O_EXCL
            fd = os.open(file_target, os.O_WRONLY | os.O_CREAT | flags, 0o600)
            return os.fdopen(fd, "wb")

        def member_done(name: str) -> None:
            nonlocal checked
            if name == DB_FILE_MEMBER:  # synced and checked on another core while the media are still decrypting
                checked = checks.submit(sqlite_copy.sync_and_inspect, file_target)

        extract = _extractor(staging, dump_dir)
        manifest = _read_backup(path, passphrase, sink_for, progress, "decrypt", member_done)
        check_restorable(manifest, migrations_dir)
        url = target_database_url or f"sqlite:///{staging_file}"
        if _database_kind(manifest) == "sqlite" and staging_file is not None:
            loading = True
            sqlite_copy.check(checked.result() if checked else None, manifest)
            progress("load", 1, 1)
            database = _open(url)
            from alembic import command

            command.upgrade(alembic_config(database, migrations_dir), "head")
        else:
            if _database_kind(manifest) == "sqlite":
                sqlite_copy.check(checked.result() if checked else None, manifest)
                dump.snapshot_to_dump(file_target, dump_dir, manifest)
            database = _open(url)
            if target_database_url:
                dump.prepare_empty_database(database.engine)
            loading = True
            dump.load_database(database, manifest, dump_dir, migrations_dir, progress)
        _check_data_key(database, staging / KEY_MEMBER)
        shutil.rmtree(dump_dir)
        database.dispose()
        database = None
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        checks.shutdown(wait=True)
        if database is not None:
            if loading and target_database_url and sqlite_file is None:
                dump.cleanup_database(database.engine)
            database.dispose()
        if (loading or created_sqlite) and sqlite_file is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(sqlite_file) + suffix).unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        checks.shutdown(wait=True)
    log.info("backup restored into %s", target)
    return manifest


def _open(url: str) -> Database:
    try:
        database = Database(url)
        database.check_connection()
    except ConfigError as exc:
        raise BackupError(str(exc)) from exc
    return database


def _sqlite_file(url: str) -> Path | None:
    from sigdesk.db import parse_url

    try:
        parsed = parse_url(url)
    except ConfigError as exc:
        raise BackupError(str(exc)) from exc
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


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

    Returns (manifest, where the previous data dir was moved); the old data is kept, never deleted.
    Refused (DataDirInUse) while SigDesk runs on the data dir: it would go on writing into the old one.
    The lock is held even when there is no data dir yet, so no SigDesk starts there meanwhile; its file
    is beside the data dir, so the rename does not move it (nor fail on Windows for an open file)."""
    data_dir = Path(data_dir).absolute()
    with datadir.hold(data_dir, "sigdesk backup restore"):
        return _restore_in_place(path, passphrase, data_dir, database_url, progress, migrations_dir)


def _restore_in_place(
    path: Path,
    passphrase: str,
    data_dir: Path,
    database_url: str | None,
    progress: Progress | None,
    migrations_dir: Path | None,
) -> tuple[dict, Path | None]:
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
