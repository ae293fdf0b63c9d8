"""A rebuild from history in short transactions: any chunk size gives the same rollups as one chunk, writes
made while it runs are counted exactly once (by the rebuild's replay or by the consumer after it), the write
lock is free between chunks, and a rebuild that stopped half-way resumes without counting anything twice."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from sigdesk.analytics.rollups import APPLIED, Rollups, build_once, rebuild
from sigdesk.db import write_lock
from sigdesk.events.catalogue import ConversationStatusChanged, MessageQueued, MessageReceived, from_stored
from sigdesk.events.outbox import Stored, record
from sigdesk.models import AuditEvent, Conversation, OutboxEvent
from sigdesk.models.analytics import AnalyticsDaily, AnalyticsEpisode, AnalyticsState
from tests import factories

pytestmark = pytest.mark.database

START = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)


def _db(app):
    return app.extensions["sigdesk"].database


def _rollups(session) -> tuple[list, list]:
    counters = sorted(
        session.execute(
            select(AnalyticsDaily.metric, AnalyticsDaily.day, AnalyticsDaily.dimension, AnalyticsDaily.value)
        ).all()
    )
    episodes = sorted(
        session.execute(
            select(
                AnalyticsEpisode.conversation_id,
                AnalyticsEpisode.agent_id,
                AnalyticsEpisode.started_on,
                AnalyticsEpisode.first_response_seconds,
                AnalyticsEpisode.resolved_on,
                AnalyticsEpisode.resolution_seconds,
            )
        ).all(),
        key=lambda row: tuple((value is not None, value) for value in row),
    )
    return counters, episodes


def _inbound(session, where, moment: datetime) -> None:
    message = factories.message(session, where, "in", timestamp=moment)
    record(session, MessageReceived(where.id, where.assignee_id, message.id))


def _reply(session, where, moment: datetime, agent_id: int) -> None:
    message = factories.message(session, where, "out", timestamp=moment, created_at=moment, author_id=agent_id)
    record(session, MessageQueued(where.id, where.assignee_id, message.id, "text", agent_id))


def _resolve(session, where, moment: datetime) -> None:
    """Stored as at `moment` (the consumer dates a resolution by its event, history by its audit entry)."""
    session.commit()  # the messages' events are stored at commit: before this one
    event = ConversationStatusChanged(where.id, where.assignee_id, "resolved", "open")
    session.add(OutboxEvent(at=moment, name=event.name, payload=json.dumps(dataclasses.asdict(event))))
    session.add(
        AuditEvent(
            at=moment,
            action="conversation.status",
            target=f"conversation:{where.id}",
            detail='{"from": "open", "to": "resolved"}',
            channel="web",
        )
    )


def _history(app, conversations: int = 6) -> list[int]:
    """Conversations over three days: a question, an answer, a resolution, and a question left open."""
    made = []
    with _db(app).session() as session:
        agents = [factories.user(session, "agent").id for _ in range(2)]
        for n in range(conversations):
            where = factories.conversation(session, assignee_id=agents[n % 2])
            base = START + timedelta(hours=9 * n)
            _inbound(session, where, base)
            _inbound(session, where, base + timedelta(minutes=3))
            _reply(session, where, base + timedelta(minutes=10 + n), agents[n % 2])
            _resolve(session, where, base + timedelta(hours=2))
            _inbound(session, where, base + timedelta(hours=3))
            made.append(where.id)
    return made


def _feed_consumer(app) -> int:
    """The consumer, given every stored event it reads (as the outbox would offer them)."""
    with _db(app).session() as session:
        rows = session.execute(select(OutboxEvent.id, OutboxEvent.name, OutboxEvent.payload)).all()
        stored = [
            Stored(row.id, from_stored(row.name, json.loads(row.payload))) for row in rows if row.name in Rollups.events
        ]
        return Rollups()(session, stored)


def _one_shot(app) -> tuple[list, list]:
    with _db(app).session() as session:
        rebuild(session, batch=1_000_000, restart=True)
        return _rollups(session)


def test_a_rebuild_in_many_small_chunks_equals_one_in_a_single_chunk(app):
    _history(app)
    chunks = []
    with _db(app).session() as session:
        messages, episodes = rebuild(session, batch=2, progress=lambda *step: chunks.append(step))
        chunked = _rollups(session)
    assert (messages, episodes) == (24, 12)
    assert len([step for step in chunks if step[0] == "messages"]) >= 12
    assert len([step for step in chunks if step[0] == "episodes"]) >= 3
    assert _one_shot(app) == chunked
    assert (600, 7200) in [(row[3], row[5]) for row in chunked[1]]  # answered in 10 min, resolved in 2 h
    assert _feed_consumer(app) == 0  # every stored event is behind `applied`: nothing counted twice


def test_writes_during_a_rebuild_are_counted_once_whether_their_chunk_was_built_or_not(app):
    ids = _history(app)
    later = START + timedelta(days=5)  # after all of history, as a new message is
    happened = []

    def meanwhile(stage: str, done: int, of: int) -> None:
        with _db(app).session() as other:
            if stage == "messages" and not happened:  # nothing rebuilt yet
                _inbound(other, other.get(Conversation, ids[-1]), later)
                happened.append(stage)
            elif stage == "episodes" and len(happened) == 1:  # the first episodes are written
                first = other.get(Conversation, ids[0])
                _inbound(other, first, later + timedelta(minutes=1))
                _reply(other, first, later + timedelta(minutes=5), first.assignee_id)
                _resolve(other, first, later + timedelta(minutes=30))
                fresh = factories.conversation(other)
                _inbound(other, fresh, later + timedelta(minutes=2))
                happened.append(stage)
        assert _feed_consumer(app) == 0  # the consumer leaves events to the rebuild until it hands over

    with _db(app).session() as session:
        messages, _ = rebuild(session, batch=2, progress=meanwhile)
        during = _rollups(session)
    assert happened == ["messages", "episodes"] and messages == 24  # history up to the mark
    assert _feed_consumer(app) == 0  # handed over after the last replayed event
    expected = _one_shot(app)
    assert set(during[0]) ^ set(expected[0]) == set() and set(during[1]) ^ set(expected[1]) == set()
    assert during == expected
    with _db(app).session() as session:
        assert session.scalar(select(func.sum(AnalyticsDaily.value)).where(AnalyticsDaily.dimension == "")) == 28
    # and an event after the hand-over is the consumer's
    with _db(app).session() as session:
        _inbound(session, session.get(Conversation, ids[1]), later + timedelta(hours=1))
    assert _feed_consumer(app) == 1


def test_the_write_lock_is_free_between_the_rebuilds_short_transactions(app):
    _history(app)
    free = []

    def probe(stage: str, done: int, of: int) -> None:
        with _db(app).session() as other:
            lock = write_lock(other)
            free.append(lock.acquire(blocking=False) if hasattr(lock, "acquire") else True)
            if hasattr(lock, "acquire") and free[-1]:
                lock.release()
            factories.conversation(other)  # a webhook-style write goes through at once

    with _db(app).session() as session:
        rebuild(session, batch=3, progress=probe)
    assert len(free) >= 10 and all(free)


def test_an_interrupted_rebuild_resumes_after_its_last_chunk_without_counting_twice(app, caplog):
    _history(app)
    expected = _one_shot(app)
    seen = []

    def crash(stage: str, done: int, of: int) -> None:
        seen.append(stage)
        if stage == "episodes":
            raise KeyboardInterrupt

    with _db(app).session() as session:
        with pytest.raises(KeyboardInterrupt):
            rebuild(session, batch=4, progress=crash, restart=True)
        session.rollback()
        assert session.get(AnalyticsState, APPLIED) is None  # the consumer still waits
        with caplog.at_level(logging.INFO, "sigdesk.analytics.rollups"):
            assert build_once(session) == len(expected[1])  # the worker's next start finishes it
        assert "analytics rebuild: episodes 12 of 12" in caplog.text  # counts only
        assert "1555" not in caplog.text and "Hello" not in caplog.text  # no phone, no message text
        assert _rollups(session) == expected
        assert build_once(session) == 0
    assert seen.count("episodes") == 1


def test_the_cli_refuses_a_batch_below_one_and_changes_nothing(app):
    from sigdesk.cli import main

    _history(app, 2)
    before = _one_shot(app)
    config = app.extensions["sigdesk"].config
    base = ["--data-dir", str(config.data_dir), "--database-url", config.database_url, "analytics", "rebuild"]
    refused = CliRunner().invoke(main, [*base, "--batch", "0"])
    assert refused.exit_code != 0 and "--batch" in refused.output
    result = CliRunner().invoke(main, [*base, "--batch", "3", "--restart"])
    assert result.exit_code == 0, result.output
    assert "messages: 3/8" in result.output
    assert result.output.strip().splitlines()[-1] == "8 messages, 4 conversation episodes"
    with _db(app).session() as session:
        assert _rollups(session) == before
