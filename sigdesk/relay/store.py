"""Events on the relay: append on Meta's POST, pull and acknowledge for the desktop, replay, purge.

Ordering is what makes the cursor safe. A desktop acknowledges "everything up to seq N", so an event
must never become visible with a seq below one already seen. Every append therefore first updates
its install's row (which also enforces the quota): MySQL holds that row lock until the commit, and
on SQLite appends run under the process's write lock (SQLite has one writer anyway; a mutex queues
this process's writers without SQLite's sleeping back-off). Sequence numbers come from an
AUTOINCREMENT key, so a purged number is never handed out again.

On SQLite, appends are group-committed: a POST queues its event, and whichever request holds the
write lock writes every queued event in one transaction. Each request still answers only after the
commit that holds its event; under load one commit carries many events instead of each paying for
its own (and for the GIL hand-offs inside it).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, delete, event, func, insert, select, update

from sigdesk.batching import BatchFailed, GroupCommit
from sigdesk.db import WRITER_OPTION, Database, UTCDateTime, utcnow, write_lock
from sigdesk.prepared import Prepared
from sigdesk.relay.installs import digest, same_digest
from sigdesk.relay.models import Event, Install

log = logging.getLogger(__name__)

HOOK_CACHE_SECONDS = 5.0
POLL_STAMP_SECONDS = 5.0
KEEP_UNACKED = timedelta(days=30)
KEEP_ACKED = timedelta(days=7)
PURGE_EVERY_SECONDS = 600.0
CHECKPOINT_EVERY_COMMITS = 200
ROWS_PER_INSERT = 100

_installs = Install.__table__
_events = Event.__table__
_size = bindparam("b_size", type_=Integer())
_count = bindparam("b_count", type_=Integer())

_RESERVE_STATEMENT = (
    update(_installs)
    .where(
        _installs.c.id == bindparam("b_id"),
        _installs.c.revoked_at.is_(None),
        _installs.c.stored_events + _count <= _installs.c.max_events,
        _installs.c.stored_bytes + _size <= _installs.c.max_bytes,
    )
    .values(
        stored_events=_installs.c.stored_events + _count,
        stored_bytes=_installs.c.stored_bytes + _size,
        last_delivery_at=bindparam("b_now", type_=UTCDateTime()),
    )
)
_APPEND_COLUMNS = ("install_id", "received_at", "size", "signature", "body")
_RESERVE = Prepared(_RESERVE_STATEMENT)
_APPEND = Prepared(insert(_events), column_keys=_APPEND_COLUMNS)


class StoreUnavailable(Exception):
    """The database refused the write: Meta must be told to retry (503)."""


class QuotaExceeded(StoreUnavailable):
    """The install's backlog is full even after dropping acknowledged events."""


class InstallGone(Exception):
    """The install was revoked (or deleted) since its webhook address was looked up."""


@dataclass(frozen=True)
class Hook:
    install_id: int
    verify_hash: str
    looked_up: float


@dataclass(frozen=True)
class Reader:
    """The install a bearer token belongs to."""

    id: int
    uid: str
    name: str


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    received_at: datetime
    signature: str | None
    body: bytes


class Notifier:
    """Wakes the long-polls of one install when its events change (a new delivery, a replay)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generations: dict[int, int] = {}
        self.closed = False

    def generation(self, install_id: int) -> int:
        with self._changed:
            return self._generations.get(install_id, 0)

    def notify(self, install_id: int) -> None:
        with self._changed:
            self._generations[install_id] = self._generations.get(install_id, 0) + 1
            self._changed.notify_all()

    def wait(self, install_id: int, seen: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.closed or self._generations.get(install_id, 0) != seen, timeout)

    def close(self) -> None:
        """The relay is stopping: end every long-poll now rather than make shutdown wait for them."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    defaults: tuple[Any, ...]  # literals SQLAlchemy turned into parameters, like the 1 in "+ 1"
    processors: tuple[Any, ...]

    @classmethod
    def of(cls, statement, dialect, column_keys: tuple[str, ...] | None = None) -> "_Compiled":
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        names = tuple(compiled.positiontup)
        binds = [compiled.binds[name] for name in names]
        return cls(
            compiled.string,
            names,
            tuple(bind.effective_value for bind in binds),
            tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds),
        )

    def values(self, params: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, default, processor in zip(self.names, self.defaults, self.processors, strict=True):
            value = params.get(name, default)
            values.append(processor(value) if processor is not None and value is not None else value)
        return tuple(values)


class _Pending:
    """One POST's event waiting for the commit that stores it."""

    __slots__ = ("install_id", "body", "signature", "seq")

    def __init__(self, install_id: int, body: bytes, signature: str | None) -> None:
        self.install_id = install_id
        self.body = body
        self.signature = signature
        self.seq: int | None = None


class _SqliteAppender:
    """SQLite's path for Meta's POSTs: one DBAPI connection kept for appends, SQL compiled once.

    SQLAlchemy's per-execution machinery (about 150 µs for each of begin, statements and commit)
    costs several times what SQLite spends on an append, and appends run under the write lock, so
    it would cap the ingest rate. SQLAlchemy still writes the SQL and converts the values, through
    the columns' own bind processors. Call only while holding the write lock.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reserve = _Compiled.of(_RESERVE_STATEMENT, engine.dialect)
        self.insert = _Compiled.of(insert(_events), engine.dialect, _APPEND_COLUMNS)
        self._insert_sqls: dict[int, str] = {}
        self._connection = None

    def write(self, batch: list[_Pending], now: datetime) -> None:
        """Store the batch in one transaction; sets each event's seq, left None when its install refused it."""
        if self._connection is None:
            self._connection = self.engine.raw_connection()
        connection = self._connection.driver_connection
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            refused: set[int] = set()
            for install_id in dict.fromkeys(item.install_id for item in batch):
                mine = [item for item in batch if item.install_id == install_id]
                cursor.execute(
                    self.reserve.sql,
                    self.reserve.values(
                        {
                            "b_id": install_id,
                            "b_count": len(mine),
                            "b_size": sum(len(item.body) for item in mine),
                            "b_now": now,
                        }
                    ),
                )
                if cursor.rowcount != 1:
                    refused.add(install_id)
            accepted = [item for item in batch if item.install_id not in refused]
            for start in range(0, len(accepted), ROWS_PER_INSERT):
                rows = accepted[start : start + ROWS_PER_INSERT]
                cursor.execute(
                    self._insert_sql(len(rows)),
                    [
                        value
                        for item in rows
                        for value in self.insert.values(
                            {
                                "install_id": item.install_id,
                                "received_at": now,
                                "size": len(item.body),
                                "signature": item.signature,
                                "body": item.body,
                            }
                        )
                    ],
                )
                last = cursor.lastrowid
            cursor.execute("COMMIT")
        except BaseException:
            self._abandon(connection)
            raise
        finally:
            cursor.close()
        for offset, item in enumerate(accepted):  # AUTOINCREMENT numbers one transaction's rows consecutively
            item.seq = last - len(accepted) + 1 + offset

    def _insert_sql(self, rows: int) -> str:
        """One multi-row INSERT: each SQLite call releases and retakes the GIL, a convoy under load."""
        sql = self._insert_sqls.get(rows)
        if sql is None:
            head, _, group = self.insert.sql.partition(" VALUES ")
            sql = self._insert_sqls[rows] = f"{head} VALUES {', '.join([group] * rows)}"
        return sql

    def _abandon(self, connection) -> None:
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - a connection that cannot roll back is replaced
            self.close()

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.invalidate()


class RelayStore:
    """The relay's database with the in-process state around it: write lock, caches, long-poll wake-ups."""

    def __init__(
        self,
        database: Database,
        keep_acked: timedelta = KEEP_ACKED,
        keep_unacked: timedelta = KEEP_UNACKED,
        purge_every: float = PURGE_EVERY_SECONDS,
        durable: bool = False,
    ) -> None:
        self.database = database
        self.engine = database.engine
        if self.engine.dialect.name == "sqlite":
            self.engine.dispose()  # pooled connections from the migrations must get these settings too
            event.listen(self.engine, "connect", _no_autocheckpoint)
            if durable:
                # fsync each commit: an event answered 200 then survives a power cut too, not only a crash
                event.listen(self.engine, "connect", _synchronous_full)
        self.keep_acked = keep_acked
        self.keep_unacked = min(keep_unacked, KEEP_UNACKED)
        self.purge_every = purge_every
        self.notifier = Notifier()
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._appender = _SqliteAppender(self.engine) if self._sqlite else None
        self._writer = self.engine.execution_options(**{WRITER_OPTION: True})
        self._lock = write_lock(self.engine)
        self._batches: GroupCommit[_Pending, int | None] = GroupCommit(self._write_batch, self._lock)
        self._hooks: dict[str, Hook] = {}
        self._poll_stamps: dict[int, float] = {}
        self._purge_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._commits = 0
        self._next_purge = time.monotonic()  # first request purges what piled up while stopped

    def write_lock(self) -> AbstractContextManager:
        return self._lock

    # --- Meta's side ---------------------------------------------------------------------------

    def hook(self, path: str) -> Hook | None:
        """The install behind a webhook address; cached briefly (the append re-checks revocation)."""
        cached = self._hooks.get(path)
        if cached is not None and time.monotonic() - cached.looked_up < HOOK_CACHE_SECONDS:
            return cached
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_installs.c.id, _installs.c.verify_hash).where(
                    _installs.c.hook_path == path, _installs.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            self._hooks.pop(path, None)
            return None
        hook = Hook(row.id, row.verify_hash, time.monotonic())
        if len(self._hooks) > 10_000:
            self._hooks.clear()
        self._hooks[path] = hook
        return hook

    @staticmethod
    def verify_token_matches(hook: Hook, token: str) -> bool:
        return same_digest(token, hook.verify_hash)

    def append(self, install_id: int, body: bytes, signature: str | None) -> int:
        """Store one delivery and commit; returns its sequence number. Raises rather than lose it silently."""
        try:
            seq = self._append(install_id, body, signature)
            if seq is None:
                self.drop_acknowledged(install_id)
                seq = self._append(install_id, body, signature)
                if seq is None:
                    raise QuotaExceeded(f"install {install_id} is over its quota")
        except (StoreUnavailable, InstallGone):
            raise
        except Exception as exc:  # noqa: BLE001 - any storage failure must become a 503 so Meta retries
            log.error(
                "could not store a delivery for install %s: %s: %s",
                install_id,
                type(exc).__name__,
                getattr(exc, "orig", exc),
            )
            raise StoreUnavailable(str(exc)) from exc
        self.notifier.notify(install_id)
        return seq

    def _append(self, install_id: int, body: bytes, signature: str | None) -> int | None:
        signature = signature[:200] if signature else None
        if self._appender is not None:
            seq = self._group_commit(_Pending(install_id, body, signature))
            if seq is None and not self._active(install_id):
                raise InstallGone(f"install {install_id} is revoked")
            return seq
        with self._writer.begin() as conn:
            now = utcnow()
            if _RESERVE(conn, {"b_id": install_id, "b_count": 1, "b_size": len(body), "b_now": now}).rowcount != 1:
                if not self._active(install_id, conn):
                    raise InstallGone(f"install {install_id} is revoked")
                return None
            result = _APPEND(
                conn,
                {
                    "install_id": install_id,
                    "received_at": now,
                    "size": len(body),
                    "signature": signature,
                    "body": body,
                },
            )
            return result.lastrowid

    def _write_batch(self, batch: list[_Pending]) -> list[int | None]:
        try:
            self._appender.write(batch, utcnow())
        except Exception as exc:
            log.error("could not store %d deliveries: %s: %s", len(batch), type(exc).__name__, exc)
            raise
        self._commits += 1
        return [item.seq for item in batch]

    def _group_commit(self, item: _Pending) -> int | None:
        try:
            seq = self._batches.submit(item)
        except BatchFailed as exc:
            raise StoreUnavailable(str(exc)) from exc
        if self._commits >= CHECKPOINT_EVERY_COMMITS:
            self.checkpoint()
        return seq

    def checkpoint(self) -> None:
        """Copy the WAL into the database file, outside the write lock, by one request at a time.

        SQLite would do it inside a commit every 1,000 pages (a few hundred appends), with an fsync,
        while every other POST waits for the write lock; a passive checkpoint from another
        connection lets appends go on meanwhile.
        """
        if not self._sqlite or not self._checkpoint_lock.acquire(blocking=False):
            return
        try:
            self._commits = 0
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # noqa: BLE001 - the next checkpoint will try again
            log.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._checkpoint_lock.release()

    def _active(self, install_id: int, conn: Connection | None = None) -> bool:
        query = select(_installs.c.revoked_at.is_(None)).where(_installs.c.id == install_id)
        if conn is not None:
            return bool(conn.scalar(query))
        with self.engine.connect() as fresh:
            return bool(fresh.scalar(query))

    def close(self) -> None:
        self.notifier.close()
        if self._appender is not None:
            with self._lock:
                self._appender.close()
        self.database.dispose()

    # --- the desktop's side --------------------------------------------------------------------

    def reader(self, token: str) -> Reader | None:
        if not token:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_installs.c.id, _installs.c.uid, _installs.c.name).where(
                    _installs.c.token_hash == digest(token), _installs.c.revoked_at.is_(None)
                )
            ).first()
        return Reader(row.id, row.uid, row.name) if row is not None else None

    def stamp_poll(self, install_id: int) -> None:
        """Remember when the desktop last asked (for the status page); at most every few seconds."""
        last = self._poll_stamps.get(install_id, 0.0)
        if time.monotonic() - last < POLL_STAMP_SECONDS:
            return
        self._poll_stamps[install_id] = time.monotonic()
        with self._lock, self._writer.begin() as conn:
            conn.execute(update(_installs).where(_installs.c.id == install_id).values(last_poll_at=utcnow()))

    def pull(
        self, install_id: int, after: int | None, limit: int, max_bytes: int
    ) -> tuple[list[StoredEvent], bool, int]:
        """Events after `after` (default: after the acknowledged cursor), oldest first; and whether more wait."""
        with self.engine.connect() as conn:
            acked = conn.scalar(select(_installs.c.acked_seq).where(_installs.c.id == install_id)) or 0
            start = acked if after is None else after
            rows = conn.execute(
                select(_events.c.seq, _events.c.received_at, _events.c.signature, _events.c.body)
                .where(_events.c.install_id == install_id, _events.c.seq > start)
                .order_by(_events.c.seq)
                .limit(limit + 1)
            ).all()
        events: list[StoredEvent] = []
        total = 0
        for row in rows[:limit]:
            if events and total + len(row.body) > max_bytes:
                break
            events.append(StoredEvent(row.seq, row.received_at, row.signature, row.body))
            total += len(row.body)
        return events, len(events) < len(rows), acked

    def ack(self, install_id: int, seq: int) -> int:
        """Move the cursor forward to `seq` (never back, never past what exists); returns the cursor."""
        with self._lock, self._writer.begin() as conn:
            highest = conn.scalar(
                select(func.max(_events.c.seq)).where(_events.c.install_id == install_id, _events.c.seq <= seq)
            )
            if highest is not None:
                conn.execute(
                    update(_installs)
                    .where(_installs.c.id == install_id, _installs.c.acked_seq < highest)
                    .values(acked_seq=highest, last_poll_at=utcnow())
                )
            return conn.scalar(select(_installs.c.acked_seq).where(_installs.c.id == install_id)) or 0

    def replay(self, install_id: int, since: datetime) -> dict[str, Any]:
        """Move the cursor back to the first event received at or after `since`, so it is delivered again."""
        with self._lock, self._writer.begin() as conn:
            first = conn.scalar(
                select(func.min(_events.c.seq)).where(
                    _events.c.install_id == install_id, _events.c.received_at >= since
                )
            )
            if first is not None:
                conn.execute(
                    update(_installs)
                    .where(_installs.c.id == install_id, _installs.c.acked_seq > first - 1)
                    .values(acked_seq=first - 1)
                )
            acked = conn.scalar(select(_installs.c.acked_seq).where(_installs.c.id == install_id)) or 0
            pending = conn.scalar(
                select(func.count())
                .select_from(_events)
                .where(_events.c.install_id == install_id, _events.c.seq > acked)
            )
            oldest = conn.scalar(select(func.min(_events.c.received_at)).where(_events.c.install_id == install_id))
        self.notifier.notify(install_id)
        return {"redelivering": pending or 0, "oldest_kept": _iso(oldest)}

    def status(self, install_id: int) -> dict[str, Any]:
        now = utcnow()
        with self.engine.connect() as conn:
            install = conn.execute(select(_installs).where(_installs.c.id == install_id)).one()
            backlog = conn.scalar(
                select(func.count())
                .select_from(_events)
                .where(_events.c.install_id == install_id, _events.c.seq > install.acked_seq)
            )
            oldest = conn.scalar(
                select(_events.c.received_at)
                .where(_events.c.install_id == install_id, _events.c.seq > install.acked_seq)
                .order_by(_events.c.seq)
                .limit(1)
            )
        return {
            "install": install.name,
            "last_delivery_at": _iso(install.last_delivery_at),
            "last_poll_at": _iso(install.last_poll_at),
            "backlog": backlog or 0,
            "oldest_unacked_at": _iso(oldest),
            "oldest_unacked_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
            "acked_seq": install.acked_seq,
            "stored_events": install.stored_events,
            "stored_bytes": install.stored_bytes,
            "max_events": install.max_events,
            "max_bytes": install.max_bytes,
        }

    # --- housekeeping --------------------------------------------------------------------------

    def maybe_purge(self) -> None:
        """Called on requests: the relay has no thread of its own for housekeeping."""
        if time.monotonic() < self._next_purge or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._next_purge = time.monotonic() + self.purge_every
            self.purge()
        except Exception:  # noqa: BLE001 - housekeeping must never fail a request
            log.exception("purging old relay events failed")
        finally:
            self._purge_lock.release()
        self.checkpoint()  # acknowledgements and polls write too, without counting as appends

    def purge(self, now: datetime | None = None) -> int:
        """Drop acknowledged events past the replay window and any event past the unacknowledged limit."""
        now = now or utcnow()
        with self.engine.connect() as conn:
            installs = conn.execute(select(_installs.c.id)).scalars().all()
        removed = 0
        for install_id in installs:
            removed += self._remove(
                install_id,
                lambda acked: (
                    ((_events.c.seq <= acked) & (_events.c.received_at < now - self.keep_acked))
                    | (_events.c.received_at < now - self.keep_unacked)
                ),
            )
        if removed:
            log.info("purged %d old relay events", removed)
        return removed

    def drop_acknowledged(self, install_id: int) -> int:
        """Under quota pressure: acknowledged events are only kept for replay, so they go first."""
        removed = self._remove(install_id, lambda acked: _events.c.seq <= acked)
        if removed:
            log.warning("install %s is at its quota: dropped %d acknowledged events early", install_id, removed)
        return removed

    def _remove(self, install_id: int, condition) -> int:
        with self._lock, self._writer.begin() as conn:
            acked = conn.scalar(select(_installs.c.acked_seq).where(_installs.c.id == install_id))
            if acked is None:
                return 0
            where = (_events.c.install_id == install_id) & condition(acked)
            count, size = conn.execute(
                select(func.count(), func.coalesce(func.sum(_events.c.size), 0)).select_from(_events).where(where)
            ).one()
            if not count:
                return 0
            conn.execute(delete(_events).where(where))
            conn.execute(
                update(_installs)
                .where(_installs.c.id == install_id)
                .values(
                    stored_events=_installs.c.stored_events - count,
                    stored_bytes=_installs.c.stored_bytes - size,
                )
            )
            return count


def _no_autocheckpoint(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # RelayStore.checkpoint does it, outside the write lock
    cursor.close()


def _synchronous_full(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
