"""Events after commit: stored with the write, published only once it commits, read by consumers at least once, in order."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update

from sigdesk.db import utcnow
from sigdesk.events.catalogue import CATALOGUE, NoteAdded, SettingsChanged, from_stored
from sigdesk.events.outbox import GAP_WAIT, READ_BATCH, Outbox, Stored, read_after, record
from sigdesk.models import OutboxCursor, OutboxEvent

pytestmark = pytest.mark.database


def stored_names(database) -> list[str]:
    with database.session() as session:
        return list(session.scalars(select(OutboxEvent.name).order_by(OutboxEvent.id)))


def test_events_are_stored_with_the_commit_and_published_after_it(app):
    state = app.extensions["sigdesk"]
    heard = []
    state.dispatcher.subscribe("settings.changed", heard.append)
    stream = state.events.subscribe()
    with state.database.session() as session:
        record(session, SettingsChanged(("inbox.agents_see_all",)), NoteAdded(7, None, 3))
        session.flush()
        assert heard == [] and stream.get(timeout=0) == []  # nothing is told before the commit
    assert heard == [SettingsChanged(("inbox.agents_see_all",))]
    assert [(event.kind, event.conversation_id, event.data) for event in stream.get(timeout=1)] == [
        ("note.created", 7, {"note_id": 3})
    ]
    assert stored_names(state.database) == ["settings.changed", "note.added"]


def test_a_rolled_back_transaction_tells_nobody_and_stores_nothing(app):
    state = app.extensions["sigdesk"]
    heard = []
    state.dispatcher.subscribe("settings.changed", heard.append)
    with pytest.raises(RuntimeError), state.database.session() as session:
        record(session, SettingsChanged(("x",)))
        raise RuntimeError("the write failed")
    with state.database.session() as session:
        session.commit()  # a later commit on a fresh session must not carry the dropped events
    assert heard == [] and stored_names(state.database) == []


def test_every_catalogued_event_round_trips_through_the_outbox():
    for name, cls in CATALOGUE.items():
        fields = {
            spec.name: (
                1
                if "id" in spec.name
                else ("x",)
                if spec.name in ("keys", "fields")
                else True
                if spec.name in ("ok", "on")
                else "x"
            )
            for spec in dataclasses.fields(cls)
            if spec.default is spec.default_factory is dataclasses.MISSING
        }
        event = cls(**fields)
        assert from_stored(name, json.loads(json.dumps(event.payload(), default=str))) == event
    assert from_stored("an.event.from.a.later.version", {}) is None


def test_a_consumer_reads_every_event_in_order_once_it_succeeds_and_again_after_a_failure(app):
    database = app.extensions["sigdesk"].database
    seen: list[int] = []
    failing = {"now": True}

    def consume(session, events: list[Stored]) -> None:
        seen.extend(item.event.note_id for item in events)
        if failing["now"]:
            raise RuntimeError("the receiver is down")

    outbox = Outbox()
    outbox.register("notes", consume, ["note.added"])
    with database.session() as session:
        outbox(session)  # a new consumer starts at the end of the log
    for note_id in (1, 2, 3):
        with database.session() as session:
            record(session, NoteAdded(1, None, note_id), SettingsChanged(("a",)))
    with database.session() as session:
        assert outbox(session) == 0
    failing["now"] = False
    with database.session() as session:
        assert outbox(session) == 0  # all read: the worker need not go round again at once
    with database.session() as session:
        outbox(session)
    assert seen == [1, 2, 3, 1, 2, 3]


def test_the_worker_goes_round_again_at_once_only_while_a_consumer_has_a_full_batch_waiting(app):
    database = app.extensions["sigdesk"].database
    outbox = Outbox()
    outbox.register("notes", lambda session, events: None, ["note.added"])
    with database.session() as session:
        outbox(session)
    with database.session() as session:
        record(session, *(NoteAdded(1, None, number) for number in range(READ_BATCH + 1)))
    with database.session() as session:
        assert outbox(session) == 1  # a full batch: more may be waiting
    with database.session() as session:
        assert outbox(session) == 0


def test_every_consumer_has_its_cursor_before_the_app_serves_so_none_misses_what_the_first_requests_commit(app):
    """The worker's first pass comes after start-up's recoveries; a cursor made only then would start
    after the events of requests served meanwhile (a contact created at once was never scored)."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        cursors = {
            row.consumer: row.last_id for row in session.execute(select(OutboxCursor.consumer, OutboxCursor.last_id))
        }
        record(session, NoteAdded(1, None, 1))
    assert set(cursors) == {consumer.name for consumer in state.outbox.consumers}
    with state.database.session() as session:
        event_id = session.scalar(select(func.max(OutboxEvent.id)))
    assert all(last_id < event_id for last_id in cursors.values())


def test_opening_keeps_a_known_cursors_place_and_starts_new_consumers_at_the_end(app):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        record(session, NoteAdded(1, None, 1))
        record(session, NoteAdded(1, None, 2))
    with database.session() as session:
        first, end = session.scalar(select(func.min(OutboxEvent.id))), session.scalar(select(func.max(OutboxEvent.id)))
        session.add(OutboxCursor(consumer="known", last_id=first, updated_at=utcnow()))
        session.commit()
    outbox = Outbox()
    for name in ("known", "new one", "another"):
        outbox.register(name, lambda session, events: None)
    with database.session() as session:
        outbox.open(session)
    with database.session() as session:
        stored = {
            row.consumer: row.last_id for row in session.execute(select(OutboxCursor.consumer, OutboxCursor.last_id))
        }
    assert (stored["known"], stored["new one"], stored["another"]) == (first, end, end)


def test_a_restarted_consumer_goes_on_from_its_cursor(app):
    database = app.extensions["sigdesk"].database
    first: list[int] = []
    second: list[int] = []
    before = Outbox()
    before.register("notes", lambda session, events: first.extend(item.event.note_id for item in events))
    with database.session() as session:
        before(session)
    with database.session() as session:
        record(session, NoteAdded(1, None, 1))
    with database.session() as session:
        before(session)
    with database.session() as session:
        record(session, NoteAdded(1, None, 2))
    after = Outbox()  # the process restarted
    after.register("notes", lambda session, events: second.extend(item.event.note_id for item in events))
    with database.session() as session:
        after(session)
        assert session.get(OutboxCursor, "notes").last_id == max(session.scalars(select(OutboxEvent.id)))
    assert (first, second) == ([1], [2])


def test_a_reader_waits_at_a_fresh_gap_in_the_ids_and_steps_over_an_old_one(app):
    """On MySQL a later id can commit before an earlier one; a rolled-back insert leaves a gap for good."""
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        session.execute(
            insert(OutboxEvent),
            [
                {"id": 1, "at": utcnow(), "name": "note.added", "payload": "{}"},
                {"id": 3, "at": utcnow(), "name": "note.added", "payload": "{}"},
            ],
        )
    with database.session() as session:
        assert [row[0] for row in read_after(session, 0)] == [1]
        session.execute(
            update(OutboxEvent).where(OutboxEvent.id == 3).values(at=utcnow() - GAP_WAIT - timedelta(seconds=1))
        )
        assert [row[0] for row in read_after(session, 0)] == [1, 3]


def test_read_events_are_purged_only_once_every_consumer_has_them_and_they_are_old(app):
    """Every registered consumer: the cursor of one since removed must not keep every event forever."""
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        session.add(OutboxCursor(consumer="a feature since removed", last_id=0, updated_at=utcnow()))
    outbox = Outbox()
    outbox.register("a", lambda session, events: None)
    with database.session() as session:
        outbox(session)
        record(session, SettingsChanged(("a",)))
    with database.session() as session:
        session.execute(update(OutboxEvent).values(at=utcnow() - timedelta(days=8)))
    with database.session() as session:
        assert outbox.purge(session) == 0  # not read yet
        outbox(session)
    with database.session() as session:
        assert outbox.purge(session) == 1
    assert stored_names(database) == []


def test_stepping_over_events_a_consumer_does_not_read_writes_its_cursor_only_now_and_then(app):
    """Ingest commits many events no consumer reads; a cursor write per pass would queue behind it for
    SQLite's one writer. Skipped events are simply read again after a restart, which costs nothing."""
    database = app.extensions["sigdesk"].database
    seen: list[int] = []
    outbox = Outbox()
    outbox.register("notes", lambda session, events: seen.extend(item.event.note_id for item in events), ["note.added"])
    with database.session() as session:
        outbox(session)
        saved = session.get(OutboxCursor, "notes").last_id
    for _ in range(3):
        with database.session() as session:
            record(session, SettingsChanged(("inbox.agents_see_all",)))
        with database.session() as session:
            outbox(session)
            assert session.get(OutboxCursor, "notes").last_id == saved  # nothing wanted: nothing written
    with database.session() as session:
        record(session, NoteAdded(1, None, 7))
    with database.session() as session:
        outbox(session)
        assert session.get(OutboxCursor, "notes").last_id == max(session.scalars(select(OutboxEvent.id)))
    assert seen == [7]
    again: list[int] = []
    restarted = Outbox()
    restarted.register(
        "notes", lambda session, events: again.extend(item.event.note_id for item in events), ["note.added"]
    )
    with database.session() as session:
        restarted(session)
    assert again == []  # what was handled is not offered again


def test_purging_never_holds_sqlites_lock_while_it_waits_for_another_writer(app):
    """A writer of this process holds the write mutex and is about to write: purge must not take SQLite's
    write lock first and then wait for the mutex, or both wait until the 30-second busy timeout."""
    import threading
    import time

    from sigdesk.db import write_lock

    database = app.extensions["sigdesk"].database
    outbox = Outbox()
    outbox.register("a", lambda session, events: None)
    with database.session() as session:
        outbox(session)
    holding, wrote = threading.Event(), threading.Event()

    def other_writer() -> None:
        with database.session() as session, write_lock(session):
            holding.set()
            time.sleep(0.3)  # purge starts meanwhile
            record(session, SettingsChanged(("a",)))
            session.commit()
        wrote.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    assert holding.wait(5)
    started = time.monotonic()
    with database.session() as session:
        outbox.purge(session)
    thread.join(10)
    assert wrote.is_set() and time.monotonic() - started < 5
