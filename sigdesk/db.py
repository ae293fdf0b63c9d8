"""Engine, sessions and schema upgrades for SQLite (embedded) and MySQL/MariaDB."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
import threading
import weakref
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, Table, case, create_engine, event, literal, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.pool import Pool
from sqlalchemy.types import TypeDecorator

from sigdesk.config import ConfigError
from sigdesk.errors import Conflict

log = logging.getLogger(__name__)

WRITER_OPTION = "sigdesk_writer"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    __table_args__ = MYSQL_TABLE_OPTIONS


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite and MySQL drop the zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime stored; use sigdesk.db.utcnow()")
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- stored JSON -------------------------------------------------------------------------------
#
# Columns such as messages.details and payload, message_status_events.errors, conversation and pricing,
# templates.components, account_events.payload and audit_events.detail hold JSON as text. They stay
# plain text columns, read through read_json, rather than a JSON TypeDecorator: the webhook ingest writes
# them as text it has already encoded (Core and Prepared statements, where a decorator would encode it
# twice), backups and exports pass the stored text through verbatim, and the audit log shows it as is.
# A decorator would change the Python type of those attributes for every one of them; one reader
# gives the one thing that matters, the same answer to stored text that does not parse.

_unreadable_columns: set[str] = set()


def dump_json(value: Any) -> str:
    """Compact UTF-8 JSON text, as SigDesk stores it (no ASCII escapes: emoji and scripts stay readable)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def read_json(text: str | bytes | None, expect: type | None = dict, column: str = "a JSON column") -> Any:
    """A stored JSON column's value, with one policy for text that does not parse.

    Empty is no value. Text that does not parse, or (with `expect`) parses to another shape, is no
    value either, and is logged once per column (by name, never the content, which may be personal).
    No value is `expect()` (an empty dict or list), or None when `expect` is None, so a reader never
    needs its own try/except and an edited row can never crash a page.
    """
    empty = expect() if expect is not None else None
    if text is None or text == "" or text == b"":
        return empty
    try:
        value = json.loads(text)
    except ValueError:
        _unreadable(column, "is not valid JSON")
        return empty
    if value is None:
        return empty
    if expect is not None and not isinstance(value, expect):
        _unreadable(column, f"holds {type(value).__name__}, not {expect.__name__}")
        return empty
    return value


def _unreadable(column: str, why: str) -> None:
    if column not in _unreadable_columns:
        _unreadable_columns.add(column)
        log.warning("stored %s %s; SigDesk reads it as empty (logged once per column)", column, why)


def parse_url(url: str) -> URL:
    """Parse a database URL and add what each backend needs (utf8mb4 on MySQL)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"The database URL is malformed: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "mysql", "mariadb"):
        raise ConfigError(f"Unsupported database '{backend}': use sqlite:/// or mysql+pymysql://")
    if backend in ("mysql", "mariadb"):
        if parsed.get_driver_name() not in ("pymysql",):
            parsed = parsed.set(drivername=f"{backend}+pymysql")
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def make_engine(url: str) -> Engine:
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                folder = Path(parsed.database).parent
                if not folder.is_dir():
                    raise ConfigError(f"The database folder {folder} does not exist")
                _create_private(Path(parsed.database))
            engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(
                parsed, pool_pre_ping=True, pool_recycle=3600, connect_args=mysql_connect_args(parsed)
            )
    except NoSuchModuleError as exc:
        raise ConfigError(f"The database URL names an unknown driver: {exc}") from exc
    return engine


def mysql_connect_args(parsed: URL) -> dict[str, Any]:
    """pymysql prefers TLS when the URL says nothing, and so builds a TLS context, loading the system's CA
    bundle, for every new connection, whether or not the server offers TLS: 44 ms of CPU each on a slow
    machine, against 1.5 ms for the rest of the connection. To this same machine TLS protects nothing, so
    there it is off unless the URL asks for it; to another host pymysql's preference stays."""
    if any(key.startswith("ssl") for key in parsed.query):
        return {}
    return {"ssl_disabled": True} if _on_this_machine(parsed.host or "") else {}


def _on_this_machine(host: str) -> bool:
    """A socket (no host), localhost or any loopback address (127.0.0.0/8, ::1)."""
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _create_private(path: Path) -> None:
    """Create the SQLite file owner-only; SQLite gives its -wal and -shm files the same mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"Cannot create the database file {path}: {exc.strerror}") from exc


# SQLite's page cache per connection, in KiB (its default is 2 MiB). The contacts list's filters and segments
# read indexes of 100,000 contacts and a million custom values, which thrash 2 MiB; 32 MiB holds their hot
# pages (tests/perf/bench_contacts.py: a three-condition segment's page p95 27.6 -> 22.0 ms). It is a bound, not
# an allocation: pages are taken as read, so an idle connection stays small, and the pool's few connections
# stay well under the memory of a desktop.
SQLITE_CACHE_KIB = 32 * 1024


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy drive transactions so BEGIN IMMEDIATE is explicit (avoids lock upgrades).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size=-{int(SQLITE_CACHE_KIB)}")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # A writer takes the lock up front, so SQLite's busy timeout applies; a transaction that read
    # first and then writes would instead fail at once when another writer committed in between.
    writer = connection.get_execution_options().get(WRITER_OPTION)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


_write_locks: weakref.WeakKeyDictionary[Pool, threading.Lock] = weakref.WeakKeyDictionary()
_write_locks_guard = threading.Lock()


def write_lock(session_or_engine: Session | Engine | Connection) -> AbstractContextManager:
    """Hold around a write transaction on SQLite, from its first statement to its commit.

    SQLite has one writer at a time: a transaction that read first and then writes fails at once
    ("database is locked") when another connection committed in between, and waiting writers sleep
    in growing steps. Queueing this process's writers on a mutex avoids both. MySQL locks rows, so
    there it is a no-op. Never hold it across a network call.
    """
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    if bind.dialect.name != "sqlite":
        return nullcontext()
    pool = bind.engine.pool  # one per database: shared by the writer engine, sessions and connections
    with _write_locks_guard:
        lock = _write_locks.get(pool)
        if lock is None:
            lock = _write_locks[pool] = threading.Lock()
    return lock


def update_rows(
    session: Session | Connection,
    table: Table,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    *where: Any,
    **fixed: Any,
) -> int:
    """One UPDATE for a batch of rows that each set values of their own (`rows`: the key column's value
    and the columns to set), plus `fixed` values for all and extra `where` conditions. An executemany
    would send MySQL one statement per row (pymysql batches only INSERTs), a round trip each: a
    broadcast's batch of 500 took 500. Answers the number of rows matched."""
    if not rows:
        return 0
    column = table.c[key]
    keys = list({row[key]: None for row in rows})  # a key given twice takes its last row's values
    values: dict[str, Any] = dict(fixed)
    for name in rows[0]:
        if name != key:
            kind = table.c[name].type  # so each value goes through the column's own conversion (UTC times)
            given = {row[key]: _bound(row[name], kind) for row in rows}
            values[name] = case(given, value=column, else_=table.c[name])
    result = session.execute(update(table).where(column.in_(keys), *where).values(values))
    return result.rowcount


def _bound(value: Any, kind: Any) -> Any:
    return value if isinstance(value, ClauseElement) else literal(value, kind)


def flush_unique(session: Session, taken: str, field: str | None = None) -> None:
    """Flush, turning a unique-key clash into a 409 that says what is taken: the checks before it find a
    clash in the usual case; this catches one that raced past them."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(taken, field=field) from exc


MYSQL_UNKNOWN_DATABASE = 1049  # MySQL's and MariaDB's ER_BAD_DB_ERROR, "Unknown database"


class Database:
    """One engine and two session factories per app: readers, and writers that lock SQLite up front."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.writer_engine = self.engine.execution_options(**{WRITER_OPTION: True})
        self.writer = sessionmaker(self.writer_engine, expire_on_commit=False)

    @contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        """A session that commits when the block ends cleanly and rolls back otherwise."""
        session = (self.writer if write else self.sessionmaker)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def check_connection(self) -> None:
        try:
            with self.engine.connect():
                pass
        except OperationalError as exc:
            shown = self.engine.url.render_as_string(hide_password=True)
            code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
            if code == MYSQL_UNKNOWN_DATABASE:
                # SigDesk makes its tables, never the database itself: say how, as the README does
                name = self.engine.url.database
                raise ConfigError(
                    f"Cannot open the database {shown}: the database '{name}' does not exist. SigDesk creates its "
                    f"tables but not the database: create it first, e.g. CREATE DATABASE `{name}` CHARACTER SET "
                    "utf8mb4 COLLATE utf8mb4_unicode_ci; (README, MySQL / MariaDB)"
                ) from exc
            raise ConfigError(f"Cannot open the database {shown}: {exc.orig}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(database: Database, migrations_dir: Path):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["engine"] = database.engine
    return cfg


@lru_cache(maxsize=4)
def head_revision(migrations_dir: Path) -> str | None:
    """The newest migration's id, read once per process: Alembic loads every migration file to find it."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir))
    return ScriptDirectory.from_config(cfg).get_current_head()


def upgrade_to_head(database: Database, migrations_dir: Path) -> None:
    """Migrate to the newest schema. A database already there is only asked its version, so a start (and
    every test's app) does not load and run Alembic for nothing."""
    from alembic import command

    database.check_connection()
    try:
        with database.engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # a new database: no version table yet
        current = []
    if current == [head_revision(Path(migrations_dir))]:
        return
    command.upgrade(alembic_config(database, migrations_dir), "head")
