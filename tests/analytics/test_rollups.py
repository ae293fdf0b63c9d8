"""The rollups' two writers agree: the outbox consumer, fed the inbox's events one by one, ends where a rebuild
from history ends; a replayed event is not counted twice; events before the first build wait for it."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from sigdesk.analytics.rollups import Rollups, build_once, rebuild
from sigdesk.events.catalogue import ConversationStatusChanged, MessageQueued, MessageReceived
from sigdesk.events.outbox import Stored
from sigdesk.models import AuditEvent, OutboxEvent
from sigdesk.models.analytics import AnalyticsDaily, AnalyticsEpisode
from sigdesk.settings import services as settings
from tests import factories

pytestmark = pytest.mark.database


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=timezone.utc)


def _snapshot(session) -> tuple[list, list]:
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
        ).all()
    )
    return counters, episodes


def _event(session, moment: datetime, event) -> Stored:
    row = OutboxEvent(at=moment, name=event.name, payload=json.dumps({}))
    session.add(row)
    session.flush()
    return Stored(row.id, event)


def test_the_consumer_and_a_rebuild_from_history_count_the_same(app):
    database = app.extensions["sigdesk"].database
    consumer = Rollups()
    with database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "general.timezone", "Europe/Berlin")
        agent = factories.user(session, "agent")
        session.commit()
        assert build_once(session) == 0  # an empty history: built, nothing to count
        where = factories.conversation(session, assignee_id=agent.id)
        events = []
        first = factories.message(session, where, "in", timestamp=at(22, 50))  # 23:50 in Berlin: Monday the 2nd
        events.append(_event(session, at(22, 50), MessageReceived(where.id, agent.id, first.id)))
        reply = factories.message(session, where, "out", timestamp=at(23, 5), created_at=at(23, 5), author_id=agent.id)
        events.append(_event(session, at(23, 5), MessageQueued(where.id, agent.id, reply.id, "text", agent.id)))
        again = factories.message(session, where, "in", timestamp=at(23, 10))  # 00:10 in Berlin: Tuesday
        events.append(_event(session, at(23, 10), MessageReceived(where.id, agent.id, again.id)))
        events.append(_event(session, at(23, 30), ConversationStatusChanged(where.id, agent.id, "resolved", "open")))
        session.add(
            AuditEvent(
                at=at(23, 30),
                action="conversation.status",
                target=f"conversation:{where.id}",
                detail='{"from": "open", "to": "resolved"}',
                channel="web",
            )
        )
    with database.session() as session:
        assert consumer(session, events[:2]) == 2
        assert consumer(session, events) == 2  # the first two again: already counted, skipped
        assert consumer(session, events) == 0
    with database.session() as session:
        fed = _snapshot(session)
        rebuild(session)
        built = _snapshot(session)
    assert fed == built
    counters, episodes = built
    assert ("messages_in", date(2026, 3, 2), "", 1) in counters and ("messages_in", date(2026, 3, 3), "", 1) in counters
    assert ("inbound_hour", date(2026, 3, 3), f"h00a{agent.id}", 1) in counters
    assert episodes == [(where.id, agent.id, date(2026, 3, 2), 900, date(2026, 3, 3), 2400)]


def test_events_before_the_first_build_are_left_to_it(app):
    with app.extensions["sigdesk"].database.session() as session:
        where = factories.conversation(session)
        message = factories.message(session, where, "in", timestamp=at(9))
        stored = _event(session, at(9), MessageReceived(where.id, None, message.id))
    with app.extensions["sigdesk"].database.session() as session:
        assert Rollups()(session, [stored]) == 0
        assert build_once(session) == 1
        assert build_once(session) == 0
        assert session.scalar(select(AnalyticsDaily.value).where(AnalyticsDaily.metric == "messages_in")) == 1


def test_the_cli_rebuilds_the_rollups_and_says_how_much_it_counted(app):
    from click.testing import CliRunner

    from sigdesk.cli import main

    with app.extensions["sigdesk"].database.session() as session:
        where = factories.conversation(session)
        factories.message(session, where, "in", timestamp=at(9))
        factories.message(session, where, "in", timestamp=at(10))
    config = app.extensions["sigdesk"].config
    result = CliRunner().invoke(
        main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, "analytics", "rebuild"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "2 messages, 1 conversation episodes"


def test_medians_and_p90s_are_nearest_ranks_computed_in_the_database(app):
    from sigdesk.analytics.services import Spread, percentile, spreads

    values = {None: [], 1: [5, 1, 9, 3, 7, 2, 8, 4, 6, 10], 2: [42]}
    with app.extensions["sigdesk"].database.session() as session:
        agents = {key: factories.user(session, "agent").id for key in (1, 2)}
        where = factories.conversation(session)
        for key, seconds in values.items():
            for value in seconds:
                session.add(
                    AnalyticsEpisode(
                        conversation_id=where.id,
                        agent_id=agents[key],
                        started_at=at(9),
                        started_on=date(2026, 3, 2),
                        first_response_seconds=value,
                    )
                )
        session.flush()
        column = AnalyticsEpisode.first_response_seconds
        everyone = spreads(session, column, [])[None]
        assert (
            everyone
            == Spread(11, percentile(values[1] + [42], 0.5), percentile(values[1] + [42], 0.9))
            == Spread(11, 6, 10)
        )
        per_agent = spreads(session, column, [], AnalyticsEpisode.agent_id)
        assert per_agent == {agents[1]: Spread(10, 5, 9), agents[2]: Spread(1, 42, 42)}
        assert spreads(session, column, [AnalyticsEpisode.started_on > date(2026, 3, 2)]) == {}
