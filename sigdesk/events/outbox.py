"""Events after commit: recorded on a session, stored in the outbox with the write, published once it commits.

Every writer in SigDesk (views, API, CLI, the worker, webhook ingest, the relay puller) commits a
SQLAlchemy Session, so the hooks live on Session itself: a command calls `record(session, event)`;
just before the commit the events are inserted into `outbox_events` in the same transaction, and just
after it they go to the process's Dispatcher (the live bus, in-process subscribers, the worker). A
rolled-back transaction drops its events, so nobody hears of a change that did not happen.

Background consumers (automation, outbound webhooks, broadcasts, rollups, AI) read the outbox in id
order from a cursor of their own, advanced only after their handler returned: each event at least once,
in order, across restarts (so handlers are idempotent). On MySQL two transactions can commit their ids out of order, so a
consumer does not step over a gap in the ids until it is GAP_WAIT old (a rolled-back insert leaves one).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import orjson
from sqlalchemy import Engine, delete, event as sa_event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from sigdesk.db import WRITER_OPTION, utcnow, write_lock
from sigdesk.events.catalogue import DomainEvent, from_stored
from sigdesk.models import OutboxCursor, OutboxEvent
from sigdesk.prepared import Prepared

log = logging.getLogger(__name__)

PENDING = "sigdesk.pending_events"
COMMITTING = "sigdesk.committing_events"
GAP_WAIT = timedelta(seconds=5)
READ_BATCH = 200
KEEP_READ = timedelta(days=7)
PURGE_EVERY = 3600.0
# A cursor that only stepped over events its consumer does not read is written at most this often:
# rereading those after a crash costs nothing, and a write per pass would compete with ingest for SQLite.
CURSOR_SAVE_EVERY = 5.0
WORKER_TASK = "outbox consumers"  # the worker's task that feeds them

Subscriber = Callable[[DomainEvent], None]


def record(session: Session, *events: DomainEvent) -> None:
    """Note events of the session's current transaction; they are stored and published with its commit."""
    session.info.setdefault(PENDING, []).extend(events)


class Dispatcher:
    """Where a process's committed events go: the live bus, in-process subscribers, the worker's wake-up."""

    def __init__(self, bus=None, wake: Callable[[str], None] | None = None) -> None:
        self.bus = bus
        self.wake = wake  # wake(task): the worker runs that task now rather than at its next tick
        # Event name -> the worker's tasks that have work for it; webhook bursts record thousands a second.
        self.wake_on: dict[str, set[str]] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}

    def wake_for(self, names: Iterable[str], task: str) -> None:
        """After a commit with one of these events, the worker runs `task` (and only it) at once."""
        for name in names:
            self.wake_on.setdefault(name, set()).add(task)

    def subscribe(self, name: str, subscriber: Subscriber) -> None:
        """For cheap, in-memory reactions (cache invalidation); anything slow or fallible is an outbox consumer."""
        self._subscribers.setdefault(name, []).append(subscriber)

    def publish(self, events: Sequence[DomainEvent]) -> None:
        for item in events:
            if self.bus is not None and item.live is not None:
                self.bus.publish(
                    item.live,
                    getattr(item, "conversation_id", None),
                    getattr(item, "assignee_id", None),
                    previous_assignee_ids=item.previous_assignees,
                    **item.live_data(),
                )
            for subscriber in self._subscribers.get(item.name, ()):
                try:
                    subscriber(item)
                except Exception:  # noqa: BLE001 - the commit happened; one subscriber must not undo the others
                    log.exception("subscriber to %s failed", item.name)
        if self.wake is not None:
            for task in set().union(*(self.wake_on.get(item.name, ()) for item in events)):
                self.wake(task)


_dispatchers: weakref.WeakKeyDictionary[Pool, Dispatcher] = weakref.WeakKeyDictionary()


def attach(engine: Engine, dispatcher: Dispatcher) -> None:
    """Every session on this database (whatever engine copy it uses) publishes through `dispatcher`."""
    _dispatchers[engine.pool] = dispatcher


def dispatcher_for(engine: Engine) -> Dispatcher | None:
    return _dispatchers.get(engine.pool)


# On the webhook's hot path: one prepared multi-row insert per committed batch (see sigdesk.prepared).
_INSERT = Prepared(OutboxEvent.__table__.insert(), column_keys=("at", "name", "payload"))


def _rows(events: Iterable[DomainEvent]) -> list[dict]:
    now = utcnow()
    return [
        {"at": now, "name": item.name, "payload": orjson.dumps(item.payload(), option=orjson.OPT_SORT_KEYS).decode()}
        for item in events
    ]


@sa_event.listens_for(Session, "before_commit")
def _store(session: Session) -> None:
    events = session.info.pop(PENDING, None)
    if events:
        _INSERT.many(session.connection(), _rows(events))
        session.info[COMMITTING] = events


@sa_event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    events = session.info.pop(COMMITTING, None)
    if not events:
        return
    bind = session.get_bind()
    dispatcher = dispatcher_for(bind.engine)
    if dispatcher is not None:
        dispatcher.publish(events)


@sa_event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)
        session.info.pop(COMMITTING, None)


# --- consumers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    id: int
    event: DomainEvent


# A handler may return how many of the events it acted on: 0 lets the cursor be written later, as for
# events it does not read (a consumer that filters by content, such as search's n-grams, mostly skips).
Handler = Callable[[Session, list[Stored]], int | None]


@dataclass(frozen=True)
class Consumer:
    name: str
    handle: Handler
    names: frozenset[str] | None = None  # the event names it wants; None: all


def read_after(session: Session, last_id: int, limit: int = READ_BATCH) -> list[tuple[int, object, str, str]]:
    """The stored events after `last_id` up to the first gap younger than GAP_WAIT (see the module's docstring)."""
    rows = session.execute(
        select(OutboxEvent.id, OutboxEvent.at, OutboxEvent.name, OutboxEvent.payload)
        .where(OutboxEvent.id > last_id)
        .order_by(OutboxEvent.id)
        .limit(limit)
    ).all()
    settled = utcnow() - GAP_WAIT
    expected = last_id + 1 if last_id else None  # 0: a consumer that started on an empty log takes what comes
    kept = []
    for row in rows:
        if expected is not None and row.id != expected and row.at > settled:
            break
        kept.append(tuple(row))
        expected = row.id + 1
    return kept


class Outbox:
    """The worker task that feeds every registered consumer; one transaction per consumer and batch."""

    def __init__(self) -> None:
        self.consumers: list[Consumer] = []
        self._lock = threading.Lock()
        self._next_purge = time.monotonic() + 60
        self._positions: dict[str, int] = {}  # read up to here (stored, or ahead by skipped events only)
        self._saved: dict[str, tuple[int, float]] = {}  # what the stored cursor says, and when it was written

    def register(self, name: str, handle: Handler, names: Iterable[str] | None = None) -> None:
        if any(consumer.name == name for consumer in self.consumers):
            raise ValueError(f"an outbox consumer is already named {name}")
        self.consumers.append(Consumer(name, handle, frozenset(names) if names is not None else None))

    def __call__(self, session: Session) -> int:
        """Feeds each consumer one batch; returns how many consumers may have more waiting (a full batch),
        so the worker goes round again at once only then, not after every trickle of ingest's events.
        Consumers at the same position (all of them, usually) share one read of the log."""
        if not self._lock.acquire(blocking=False):
            return 0
        try:
            groups: dict[int, list[Consumer]] = {}
            for consumer in self.consumers:
                groups.setdefault(self._position_of(session, consumer.name), []).append(consumer)
            fed = 0
            for start, consumers in sorted(groups.items()):
                _reading(session)
                rows = read_after(session, start)
                session.commit()
                if rows:
                    parsed: dict[int, DomainEvent | None] = {}
                    fed += sum(self._feed(session, consumer, rows, parsed) for consumer in consumers)
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_EVERY
                self.purge(session)
            return fed
        finally:
            self._lock.release()

    def open(self, session: Session) -> None:
        """Give every registered consumer its cursor before the app serves anything. A new consumer starts
        at the log's end; left to the worker's first pass, which comes after start-up's recoveries, it
        would start after whatever the first requests committed and never see those events. One read and
        at most one write for all of them: every app start (and every test's app) pays for this."""
        names = [consumer.name for consumer in self.consumers if consumer.name not in self._positions]
        if not names:
            return
        _reading(session)
        found = {
            row.consumer: row.last_id
            for row in session.execute(
                select(OutboxCursor.consumer, OutboxCursor.last_id).where(OutboxCursor.consumer.in_(names))
            )
        }
        session.commit()
        missing = [name for name in names if name not in found]
        if missing:
            try:
                with write_lock(session):
                    position = _start(session)
                    now = utcnow()
                    session.add_all(OutboxCursor(consumer=name, last_id=position, updated_at=now) for name in missing)
                    session.commit()
                found.update(dict.fromkeys(missing, position))
            except IntegrityError:  # another process made some first: each is then read or made on its own
                session.rollback()
                found.update({name: _position(session, name) for name in missing})
        for name in names:
            self._positions[name] = found[name]
            self._saved[name] = (found[name], time.monotonic())

    def _position_of(self, session: Session, name: str) -> int:
        if name not in self._positions:
            self._positions[name] = _position(session, name)
            self._saved[name] = (self._positions[name], time.monotonic())
        return self._positions[name]

    def _feed(self, session: Session, consumer: Consumer, rows: list, parsed: dict[int, DomainEvent | None]) -> int:
        """The handler runs outside the write lock, in a reading transaction (it may call the network);
        one that writes takes the lock itself, as send_due does. The cursor moves only after it returned."""
        wanted = []
        for row in rows:
            if consumer.names is None or row[2] in consumer.names:
                if row[0] not in parsed:
                    parsed[row[0]] = from_stored(row[2], json.loads(row[3]))
                if parsed[row[0]] is not None:
                    wanted.append(Stored(row[0], parsed[row[0]]))
        acted = 0
        if wanted:
            _reading(session)
            try:
                result = consumer.handle(session, wanted)
                acted = len(wanted) if result is None else result
                session.commit()
            except Exception:  # noqa: BLE001 - not advanced: the same events are offered again next pass
                session.rollback()
                log.exception("outbox consumer %s failed; it will be offered the same events again", consumer.name)
                return 0
        self._positions[consumer.name] = rows[-1][0]
        if acted or time.monotonic() - self._saved[consumer.name][1] >= CURSOR_SAVE_EVERY:
            self._save(session, consumer.name)
        return int(len(rows) >= READ_BATCH)

    def _save(self, session: Session, name: str) -> None:
        position = self._positions[name]
        if self._saved[name][0] != position:
            with write_lock(session):
                session.execute(
                    update(OutboxCursor)
                    .where(OutboxCursor.consumer == name)
                    .values(last_id=position, updated_at=utcnow())
                )
                session.commit()
        self._saved[name] = (position, time.monotonic())

    @property
    def names(self) -> set[str] | None:
        """The event names some consumer reads; None when one reads them all."""
        if any(consumer.names is None for consumer in self.consumers):
            return None
        return set().union(*(consumer.names for consumer in self.consumers))

    def purge(self, session: Session) -> int:
        """Events every consumer has read and that are older than KEEP_READ; the rest stay."""
        for name in list(self._positions):
            self._save(session, name)
        # A plain read: a worker session would take SQLite's write lock at its first statement and then
        # wait below for this process's write mutex, while the mutex's holder waits for SQLite's lock.
        _reading(session)
        # Only the registered consumers' cursors: one left by a consumer since removed must not keep every event.
        names = [consumer.name for consumer in self.consumers]
        positions = list(session.scalars(select(OutboxCursor.last_id).where(OutboxCursor.consumer.in_(names))))
        if self.consumers and len(positions) < len(self.consumers):
            session.commit()
            return 0
        upto = min(positions) if positions else session.scalar(select(func.max(OutboxEvent.id))) or 0
        session.commit()
        with write_lock(session):
            gone = session.execute(
                delete(OutboxEvent).where(OutboxEvent.id <= upto, OutboxEvent.at < utcnow() - KEEP_READ)
            ).rowcount
            session.commit()
        return gone or 0


def _reading(session: Session) -> None:
    """Begin a plain (deferred) transaction: the worker's sessions otherwise lock SQLite for writing at once."""
    session.commit()
    session.connection(execution_options={WRITER_OPTION: False})


def _position(session: Session, name: str) -> int:
    _reading(session)
    position = session.scalar(select(OutboxCursor.last_id).where(OutboxCursor.consumer == name))
    session.commit()
    if position is not None:
        return position
    try:
        with write_lock(session):
            position = _start(session)
            session.add(OutboxCursor(consumer=name, last_id=position, updated_at=utcnow()))
            session.commit()
    except IntegrityError:  # another process (the CLI, a second start) made it first: take theirs
        session.rollback()
        position = int(session.scalar(select(OutboxCursor.last_id).where(OutboxCursor.consumer == name)) or 0)
        session.commit()
    return position


def _start(session: Session) -> int:
    """A new consumer starts at the end: it reacts to what happens from now on, not to history."""
    return int(session.scalar(select(func.max(OutboxEvent.id))) or 0)
