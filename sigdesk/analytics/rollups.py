"""Keeps the dashboard's rollups (sigdesk.models.analytics) in step with the inbox.

Two writers share one meaning. `Rollups` is the outbox consumer: each message received or queued adds to its
day's counters, and the messages and status changes open, answer and close conversation episodes. `rebuild`
recomputes everything from the stored history (messages and the audit log's status changes) for a database
that had conversations before the dashboard existed; the worker runs it once on its first start and
`sigdesk analytics rebuild` on demand.

The outbox offers an event at least once, so the consumer remembers the last event it applied in
analytics_state, written in the same transaction as the counters: a replayed event is skipped, never
counted twice.

A rebuild never holds SQLite's write lock for long: it reads outside the lock and writes a chunk of
BATCH // 5 rows per short transaction, so ingest and pages write in between. Who counts what:

1. In one short transaction it removes `applied` (the consumer then takes no event: each one it is
   offered is left to the rebuild) and stores high-water marks: the last outbox event, message and audit
   entry. On SQLite nothing commits during that transaction and a message is stored
   with its event, so a message is at or below the message mark exactly when its event is at or below
   the event mark.
2. History up to the marks: the messages and the resolutions audited up to the marks, walked in one read,
   then the counters and the episodes written in the order of their day. Messages written meanwhile are
   above the mark and not read.
3. The outbox after the event mark, replayed in order as the consumer would apply it, except a message's
   event whose message is at or below the mark (history counted it; on MySQL a write committing during
   step 1 can fall on either side). The last slice of the replay and the new `applied` commit together,
   with the consumer kept out (write lock on SQLite, FOR UPDATE on the state rows on MySQL), so the
   consumer takes over exactly after the last replayed event.

Every chunk advances its stage's mark (rebuild.* rows of analytics_state) in the transaction that writes
it, so a rebuild that stopped (crash, restart) resumes without counting anything twice: it walks the same
history again and skips the rows already written (`restart=True` starts over; use it when history up to
the marks changed meanwhile, e.g. a contact was erased). Until it ends the dashboard shows partial figures.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from sigdesk.db import WRITER_OPTION, read_json, utcnow, write_lock
from sigdesk.events.catalogue import from_stored
from sigdesk.events.outbox import Stored, read_after
from sigdesk.general.clock import as_utc, business_zone
from sigdesk.models import AuditEvent, Conversation, Message, OutboxEvent
from sigdesk.models.analytics import AnalyticsDaily, AnalyticsEpisode, AnalyticsState

log = logging.getLogger(__name__)

EVENTS = ("message.received", "message.queued", "conversation.status_changed", "conversation.assigned")
APPLIED = "applied"  # analytics_state key: the last outbox event id the counters include
BATCH = 5000

Key = tuple[str, date, str]


def business_day(moment: datetime, zone: ZoneInfo) -> date:
    return as_utc(moment).astimezone(zone).date()


def _hour(moment: datetime, zone: ZoneInfo) -> int:
    return as_utc(moment).astimezone(zone).hour


def inbound_keys(moment: datetime, zone: ZoneInfo, assignee_id: int | None) -> list[Key]:
    """The counters one customer message adds to: the day's total, its hour (heatmap), and its agent's."""
    day, hour = business_day(moment, zone), f"h{_hour(moment, zone):02d}"
    keys = [("messages_in", day, ""), ("inbound_hour", day, hour)]
    if assignee_id:
        keys += [("messages_in", day, f"a{assignee_id}"), ("inbound_hour", day, f"{hour}a{assignee_id}")]
    return keys


def outbound_keys(moment: datetime, zone: ZoneInfo, author_id: int | None) -> list[Key]:
    day = business_day(moment, zone)
    return [("messages_out", day, "")] + ([("messages_out", day, f"a{author_id}")] if author_id else [])


def add_counts(session: Session, counts: dict[Key, int]) -> None:
    """Adds to the counters, creating the missing ones (one UPDATE, or one INSERT, per counter)."""
    for (metric, day, dimension), delta in counts.items():
        changed = session.execute(
            update(AnalyticsDaily)
            .where(AnalyticsDaily.metric == metric, AnalyticsDaily.day == day, AnalyticsDaily.dimension == dimension)
            .values(value=AnalyticsDaily.value + delta)
        ).rowcount
        if not changed:
            session.add(AnalyticsDaily(metric=metric, day=day, dimension=dimension, value=delta))
    session.flush()


def _open_episode(session: Session, conversation_id: int) -> AnalyticsEpisode | None:
    return session.scalar(
        select(AnalyticsEpisode)
        .where(AnalyticsEpisode.conversation_id == conversation_id, AnalyticsEpisode.resolved_at.is_(None))
        .order_by(AnalyticsEpisode.id.desc())
        .limit(1)
    )


def _seconds(later: datetime, earlier: datetime) -> int:
    return max(0, int((as_utc(later) - as_utc(earlier)).total_seconds()))


_MESSAGE_EVENTS = ("message.received", "message.queued")


def _message_rows(session: Session, ids: list[int]) -> dict[int, Any]:
    """What counting reads of these messages, in a few reads for a batch (a broadcast's is hundreds)."""
    found: dict[int, Any] = {}
    for start in range(0, len(ids), 500):
        found.update(
            (row.id, row)
            for row in session.execute(
                select(Message.id, Message.direction, Message.timestamp, Message.created_at, Message.author_id).where(
                    Message.id.in_(ids[start : start + 500])
                )
            )
        )
    return found


class Rollups:
    """The outbox consumer "analytics"; see the module's docstring."""

    events = EVENTS

    def __call__(self, session: Session, events: list[Stored]) -> int:
        session.commit()  # ends the outbox's reading transaction: the one below begins inside the lock
        with write_lock(session):
            # FOR UPDATE (MySQL): wait for a rebuild's hand-over and read what it committed, not a snapshot
            state = session.scalars(
                select(AnalyticsState)
                .where(AnalyticsState.key.in_((APPLIED, EVENTS_MARK)))
                .with_for_update()
                .execution_options(populate_existing=True)
            ).all()
            state = next((row for row in state if row.key == APPLIED), None)
            if state is None:  # not built yet, or being rebuilt: the rebuild replays these from the outbox
                session.rollback()
                return 0
            fresh = [item for item in events if item.id > state.value]
            if not fresh:
                session.rollback()
                return 0
            zone = business_zone(session)
            moments = dict(
                session.execute(
                    select(OutboxEvent.id, OutboxEvent.at).where(OutboxEvent.id.in_([item.id for item in fresh]))
                ).all()
            )
            messages = _message_rows(
                session, [item.event.message_id for item in fresh if item.event.name in _MESSAGE_EVENTS]
            )
            counts: dict[Key, int] = defaultdict(int)
            for item in fresh:
                self._apply(session, zone, item, moments.get(item.id), counts, messages)
            add_counts(session, counts)
            state.value = fresh[-1].id
            session.commit()
        return len(fresh)

    def _apply(
        self,
        session: Session,
        zone: ZoneInfo,
        item: Stored,
        at: datetime | None,
        counts: dict[Key, int],
        messages: dict[int, Any] | None = None,
    ) -> None:
        event = item.event
        if event.name in _MESSAGE_EVENTS:
            if messages is None:
                messages = _message_rows(session, [event.message_id])
            row = messages.get(event.message_id)
            if row is None:
                return
            if event.name == "message.received" and row.direction == "in":
                for key in inbound_keys(row.timestamp, zone, event.assignee_id):
                    counts[key] += 1
                if _open_episode(session, event.conversation_id) is None:
                    session.add(
                        AnalyticsEpisode(
                            conversation_id=event.conversation_id,
                            agent_id=event.assignee_id,
                            started_at=as_utc(row.timestamp),
                            started_on=business_day(row.timestamp, zone),
                        )
                    )
                    session.flush()
            elif event.name == "message.queued":
                moment = row.created_at or row.timestamp
                for key in outbound_keys(moment, zone, row.author_id):
                    counts[key] += 1
                if not row.author_id:  # automated (a broadcast, a bot): never an agent's first response
                    return
                episode = _open_episode(session, event.conversation_id)
                if episode is not None and episode.first_response_at is None:
                    episode.first_response_at = as_utc(moment)
                    episode.first_response_seconds = _seconds(moment, episode.started_at)
                    episode.agent_id = row.author_id
        elif event.name == "conversation.status_changed" and event.status == "resolved":
            episode = _open_episode(session, event.conversation_id)
            if episode is not None:
                moment = at or utcnow()
                episode.resolved_at = as_utc(moment)
                episode.resolved_on = business_day(moment, zone)
                episode.resolution_seconds = _seconds(moment, episode.started_at)
                episode.agent_id = episode.agent_id or event.assignee_id
        elif event.name == "conversation.assigned":
            episode = _open_episode(session, event.conversation_id)
            if episode is not None and episode.first_response_at is None:
                episode.agent_id = event.assignee_id


@dataclass
class _Building:
    """One conversation's episode being walked by rebuild()."""

    started_at: datetime
    agent_id: int | None
    first_response_at: datetime | None = None


def _resolutions(session: Session, upto: int) -> dict[int, list[datetime]]:
    """When each conversation was resolved, from the audit log (the one record of status changes) up to `upto`."""
    found: dict[int, list[datetime]] = defaultdict(list)
    rows = session.execute(
        select(AuditEvent.target, AuditEvent.at, AuditEvent.detail).where(
            AuditEvent.action == "conversation.status", AuditEvent.id <= upto
        )
    )
    for target, at, detail in rows:
        if not target or not target.startswith("conversation:"):
            continue
        try:
            change = read_json(detail, dict, "audit detail") or {}
            conversation_id = int(target.partition(":")[2])
        except (ValueError, TypeError):
            continue
        if change.get("to") == "resolved":
            found[conversation_id].append(as_utc(at))
    for moments in found.values():
        moments.sort()
    return found


def _episodes_of(
    conversation_id: int,
    messages: list[tuple[str, int | None, datetime]],
    resolved: list[datetime],
    assignee_id: int | None,
    zone: ZoneInfo,
) -> Iterator[dict]:
    """The episodes of one conversation from its messages (direction, author, moment) and resolutions."""
    timeline = [(moment, 0, direction, author) for direction, author, moment in messages]
    timeline += [(moment, 1, "resolved", None) for moment in resolved]
    timeline.sort(key=lambda step: (step[0], step[1]))
    current: _Building | None = None
    for moment, _order, what, author in timeline:
        if what == "in" and current is None:
            current = _Building(moment, None)
        elif what == "out" and current is not None and author and current.first_response_at is None:
            current.first_response_at, current.agent_id = moment, author
        elif what == "resolved" and current is not None:
            yield _episode_row(conversation_id, current, moment, assignee_id, zone)
            current = None
    if current is not None:
        yield _episode_row(conversation_id, current, None, assignee_id, zone)


def _episode_row(
    conversation_id: int, built: _Building, resolved_at: datetime | None, assignee_id: int | None, zone: ZoneInfo
) -> dict:
    first = built.first_response_at
    return {
        "conversation_id": conversation_id,
        "agent_id": built.agent_id or assignee_id,
        "started_at": as_utc(built.started_at),
        "started_on": business_day(built.started_at, zone),
        "first_response_at": as_utc(first) if first else None,
        "first_response_seconds": _seconds(first, built.started_at) if first else None,
        "resolved_at": as_utc(resolved_at) if resolved_at else None,
        "resolved_on": business_day(resolved_at, zone) if resolved_at else None,
        "resolution_seconds": _seconds(resolved_at, built.started_at) if resolved_at else None,
    }


def _chunks(rows: Iterable[dict], size: int = BATCH) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _upsert_counts(session: Session, counts: dict[Key, int]) -> None:
    """Adds to the counters in one statement: INSERT, or add to the value when the counter exists."""
    rows = [
        {"metric": metric, "day": day, "dimension": dimension, "value": value}
        for (metric, day, dimension), value in counts.items()
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        sqlite_statement = sqlite_insert(AnalyticsDaily)
        statement = sqlite_statement.on_conflict_do_update(
            index_elements=["metric", "day", "dimension"],
            set_={"value": AnalyticsDaily.value + sqlite_statement.excluded.value},
        )
    elif dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        mysql_statement = mysql_insert(AnalyticsDaily)
        statement = mysql_statement.on_duplicate_key_update(value=AnalyticsDaily.value + mysql_statement.inserted.value)
    else:
        add_counts(session, counts)
        return
    for chunk in _chunks(rows):
        session.execute(statement, chunk)


# analytics_state keys of a rebuild in progress: the high-water marks taken at its start, and how far each
# stage got (each advanced in the transaction that wrote that stage's chunk).
EVENTS_MARK = "rebuild.events"
MESSAGES_MARK = "rebuild.messages"
AUDIT_MARK = "rebuild.audit"
CLEARED = "rebuild.cleared"
COUNTED = "rebuild.counted"
BUILT = "rebuild.built"
REPLAYED = "rebuild.replayed"
MARKS = (EVENTS_MARK, MESSAGES_MARK, AUDIT_MARK, CLEARED, COUNTED, BUILT, REPLAYED)

PAUSE = 0.05

Progress = Callable[[str, int, int], None]  # stage ("messages" read, "counters" or "episodes" written), done, of


@contextmanager
def _chunk(session: Session) -> Iterator[None]:
    """One chunk's write transaction, then a pause as long as it held the lock (at most PAUSE): the lock
    is not fair, and writers in other processes retry after sleeping in steps, so without it the next
    chunk could take the lock again before any of them."""
    began = time.monotonic()
    with write_lock(session):
        yield
    time.sleep(min(time.monotonic() - began, PAUSE))


def _read(session: Session) -> None:
    """A plain reading transaction (a writer session would lock SQLite at its first statement)."""
    session.commit()
    session.connection(execution_options={WRITER_OPTION: False})


def _marks(session: Session) -> dict[str, int]:
    rows = session.execute(select(AnalyticsState.key, AnalyticsState.value).where(AnalyticsState.key.in_(MARKS)))
    return {key: int(value) for key, value in rows}


def _mark(session: Session, key: str, value: int) -> None:
    state = session.get(AnalyticsState, key)
    if state is None:
        session.add(AnalyticsState(key=key, value=value))
    else:
        state.value = value


def _begin(session: Session) -> dict[str, int]:
    """Stops the consumer (no `applied` row) and takes the high-water marks, in one short transaction: on
    SQLite no write commits in between, so a message and its event are both before the marks or both after."""
    with write_lock(session):
        marks = {
            EVENTS_MARK: int(session.scalar(select(func.max(OutboxEvent.id))) or 0),
            MESSAGES_MARK: int(session.scalar(select(func.max(Message.id))) or 0),
            AUDIT_MARK: int(session.scalar(select(func.max(AuditEvent.id))) or 0),
            CLEARED: 0,
            COUNTED: 0,
            BUILT: 0,
            REPLAYED: 0,
        }
        marks[REPLAYED] = marks[EVENTS_MARK]
        session.execute(delete(AnalyticsState).where(AnalyticsState.key.in_((APPLIED, *MARKS))))
        session.add_all(AnalyticsState(key=key, value=value) for key, value in marks.items())
        session.commit()
    return marks


def _clear(session: Session, batch: int) -> None:
    """Empties both tables a slice at a time (episodes by id, counters by week)."""
    batch = max(1, batch // 5)
    while True:
        _read(session)
        low = session.scalar(select(func.min(AnalyticsEpisode.id)))
        session.commit()
        if low is None:
            break
        with _chunk(session):
            session.execute(delete(AnalyticsEpisode).where(AnalyticsEpisode.id < low + batch))
            session.commit()
    while True:
        _read(session)
        first = session.scalar(select(func.min(AnalyticsDaily.day)))
        session.commit()
        if first is None:
            break
        with _chunk(session):
            session.execute(delete(AnalyticsDaily).where(AnalyticsDaily.day < first + timedelta(days=7)))
            session.commit()
    with _chunk(session):
        _mark(session, CLEARED, 1)
        session.commit()


def _walk(
    session: Session, marks: dict[str, int], zone: ZoneInfo, batch: int, progress: Progress | None
) -> tuple[dict[Key, int], list[dict]]:
    """The counters and the episodes of the messages and resolutions up to the marks, in one read outside
    the lock (a reading transaction blocks no writer). Messages are counted on their agent by the
    conversation's current assignee (history keeps no other)."""
    _read(session)
    assignees = dict(session.execute(select(Conversation.id, Conversation.assignee_id)).all())
    resolutions = _resolutions(session, marks[AUDIT_MARK])
    of = int(session.scalar(select(func.count(Message.id)).where(Message.id <= marks[MESSAGES_MARK])) or 0)
    rows = session.execute(
        select(Message.conversation_id, Message.direction, Message.author_id, Message.timestamp, Message.created_at)
        .where(Message.id <= marks[MESSAGES_MARK])
        .order_by(Message.conversation_id, Message.timestamp, Message.id)
        .execution_options(yield_per=BATCH)
    )
    counts: dict[Key, int] = defaultdict(int)
    episodes: list[dict] = []
    current_id: int | None = None
    thread: list[tuple[str, int | None, datetime]] = []
    done = 0
    for conversation_id, direction, author_id, timestamp, created_at in rows:
        if conversation_id != current_id:
            if current_id is not None:
                episodes += _episodes_of(
                    current_id, thread, resolutions.get(current_id, []), assignees.get(current_id), zone
                )
            current_id, thread = conversation_id, []
        if direction == "in":
            moment = as_utc(timestamp)
            keys = inbound_keys(moment, zone, assignees.get(conversation_id))
        else:
            moment = as_utc(created_at or timestamp)
            keys = outbound_keys(moment, zone, author_id)
        for key in keys:
            counts[key] += 1
        thread.append((direction, author_id, moment))
        done += 1
        if progress and done % batch == 0:
            progress("messages", done, of)
    if current_id is not None:
        episodes += _episodes_of(current_id, thread, resolutions.get(current_id, []), assignees.get(current_id), zone)
    session.commit()
    if progress:
        progress("messages", done, of)
    return counts, episodes


def _write(
    session: Session,
    counts: dict[Key, int],
    episodes: list[dict],
    marks: dict[str, int],
    batch: int,
    progress: Progress | None,
) -> None:
    """Writes the walked history `batch // 5` rows per transaction in the order of their day, so each commit
    touches few pages of the by-day indexes. Each stage's mark counts the rows written: the same history
    gives the same rows in the same order, so a resumed rebuild skips those."""
    size = max(1, batch // 5)
    counters = sorted(counts.items(), key=lambda item: (item[0][1], item[0][0], item[0][2]))
    for start in range(marks[COUNTED], len(counters), size):
        end = min(start + size, len(counters))
        with _chunk(session):
            _upsert_counts(session, dict(counters[start:end]))
            _mark(session, COUNTED, end)
            session.commit()
        if progress:
            progress("counters", end, len(counters))
    episodes.sort(key=lambda row: (row["started_on"], row["conversation_id"], row["started_at"]))
    for start in range(marks[BUILT], len(episodes), size):
        end = min(start + size, len(episodes))
        with _chunk(session):
            session.execute(insert(AnalyticsEpisode), episodes[start:end])
            _mark(session, BUILT, end)
            session.commit()
        if progress:
            progress("episodes", end, len(episodes))


def _replay(session: Session, marks: dict[str, int], zone: ZoneInfo, rows: list, counts: dict[Key, int]) -> None:
    """Applies outbox events after the events' mark as the consumer would, except a message's event whose
    message is at or below the messages' mark (history counted it; only possible on MySQL, see the docstring)."""
    for event_id, at, name, payload in rows:
        if name not in EVENTS:
            continue
        try:
            event = from_stored(name, json.loads(payload))
        except (TypeError, ValueError):
            event = None
        if event is None:
            continue
        if name in ("message.received", "message.queued") and event.message_id <= marks[MESSAGES_MARK]:
            continue
        Rollups()._apply(session, zone, Stored(event_id, event), at, counts)


def _catch_up(session: Session, marks: dict[str, int], zone: ZoneInfo, batch: int) -> int:
    """Replays what the outbox took in during the rebuild, then, in the same transaction as the last slice,
    hands over to the consumer (`applied`) and forgets the rebuild. Returns the events replayed."""
    replayed = 0
    while True:
        _read(session)
        rows = read_after(session, marks[REPLAYED], batch)
        session.commit()
        if len(rows) < batch:
            break
        with _chunk(session):
            counts: dict[Key, int] = defaultdict(int)
            _replay(session, marks, zone, rows, counts)
            _upsert_counts(session, counts)
            marks[REPLAYED] = rows[-1][0]
            _mark(session, REPLAYED, marks[REPLAYED])
            session.commit()
        replayed += len(rows)
    with write_lock(session):
        # MySQL: the consumer reads these rows FOR UPDATE, so it waits for this hand-over and then sees it
        session.execute(select(AnalyticsState.key).where(AnalyticsState.key.in_(MARKS)).with_for_update()).all()
        counts = defaultdict(int)
        while rows := read_after(session, marks[REPLAYED], batch):
            _replay(session, marks, zone, rows, counts)
            marks[REPLAYED] = rows[-1][0]
            replayed += len(rows)
        _upsert_counts(session, counts)
        session.execute(delete(AnalyticsState).where(AnalyticsState.key.in_(MARKS)))
        _mark(session, APPLIED, marks[REPLAYED])
        session.commit()
    return replayed


def rebuild(
    session: Session, batch: int = BATCH, progress: Progress | None = None, restart: bool = False
) -> tuple[int, int]:
    """Recompute every counter and episode from history; returns (messages, episodes) counted. Resumes an
    interrupted rebuild where its last chunk ended unless `restart`; see the module's docstring for the rule
    that splits the work with the consumer."""
    _read(session)
    marks = _marks(session)
    zone = business_zone(session)
    session.commit()
    if restart or EVENTS_MARK not in marks:
        marks = _begin(session)
    if not marks[CLEARED]:
        _clear(session, batch)
    counts, episodes = _walk(session, marks, zone, batch, progress)
    _write(session, counts, episodes, marks, batch, progress)
    replayed = _catch_up(session, marks, zone, batch)
    _read(session)
    messages = int(session.scalar(select(func.count(Message.id)).where(Message.id <= marks[MESSAGES_MARK])) or 0)
    episodes = int(session.scalar(select(func.count(AnalyticsEpisode.id))) or 0)
    session.commit()
    log.info("analytics rebuilt from %d messages, %d episodes; %d events replayed", messages, episodes, replayed)
    return messages, episodes


def _logger(every: float = 5.0) -> Progress:
    """The worker's progress: counts only, at most one line per stage every `every` seconds."""
    last: dict[str, float] = {}

    def logged(stage: str, done: int, of: int) -> None:
        now = time.monotonic()
        if done >= of or now - last.get(stage, 0.0) >= every:
            last[stage] = now
            log.info("analytics rebuild: %s %d of %d", stage, done, of)

    return logged


def build_once(session: Session) -> int:
    """The worker's start-up task: the first start after the upgrade builds the rollups from history (or
    finishes a build a crash or restart interrupted)."""
    _read(session)
    built = session.scalar(select(AnalyticsState.key).where(AnalyticsState.key == APPLIED)) is not None
    session.commit()
    if built:
        return 0
    return rebuild(session, progress=_logger())[1]
