"""Reading a broadcast: every recipient state counted, failures grouped by Meta's reason, progress over time
from the recipients' own timestamps, and a preview of what one recipient would read (or why they are skipped)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sigdesk.broadcasts import services
from sigdesk.db import utcnow
from sigdesk.models.broadcast import RECIPIENT_STATES
from tests import factories
from tests.broadcasts.campaigns import customer, hello

pytestmark = pytest.mark.database


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


def test_counts_name_every_state_and_failures_are_grouped_by_reason(database):
    with database.session() as session:
        broadcast = factories.broadcast(session, hello(session), status="running")
        for state in ("sent", "sent", "unknown", "skipped"):
            factories.recipient(session, broadcast, state=state)
        for code, reason in ((131026, "cannot receive WhatsApp"),) * 2 + ((131049, "marketing limit"),):
            factories.recipient(session, broadcast, state="failed", error_code=code, reason=reason)
        counts = services.counts(session, broadcast.id)
        assert list(counts) == list(RECIPIENT_STATES)
        assert (counts["sent"], counts["unknown"], counts["failed"], counts["read"]) == (2, 1, 3, 0)
        assert services.failure_groups(session, broadcast.id) == [
            (131026, "cannot receive WhatsApp", 2),
            (131049, "marketing limit", 1),
        ]


def test_progress_is_cumulative_per_bucket_and_a_later_status_implies_the_earlier(database):
    start = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    with database.session() as session:
        broadcast = factories.broadcast(session, hello(session), status="running", started_at=start)
        factories.recipient(session, broadcast, state="sent", sent_at=start + timedelta(seconds=10))
        factories.recipient(  # Meta's "delivered" never came, only "read"
            session,
            broadcast,
            state="read",
            sent_at=start + timedelta(seconds=20),
            read_at=start + timedelta(seconds=70),
        )
        factories.recipient(session, broadcast, state="failed", updated_at=start + timedelta(seconds=65))
        factories.recipient(session, broadcast, state="skipped", updated_at=start)
        series = services.progress(session, broadcast.id, 60)
    assert [
        (point["sent"], point["delivered"], point["read"], point["failed"], point["skipped"]) for point in series
    ] == [(2, 0, 0, 0, 1), (2, 1, 1, 1, 1)]
    assert series[0]["at"] == start + timedelta(seconds=60)


def test_a_preview_shows_the_words_or_why_the_recipient_is_skipped(database):
    with database.session() as session:
        ana, nameless = customer(session, display_name="Ana López"), customer(session)
        broadcast = factories.broadcast(session, hello(session), variables={"body": {"1": "{contact.first_name}"}})
        assert services.preview(session, broadcast, ana.id).text == "Hello Ana!"
        skipped = services.preview(session, broadcast, nameless.id)
        assert (skipped.text, skipped.reason) == (None, "no value for contact.first_name")


def test_a_read_message_shows_as_delivered_when_meta_sent_read_without_delivered(database):
    start = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    read = start + timedelta(seconds=30)
    with database.session() as session:
        broadcast = factories.broadcast(session, hello(session), status="running", started_at=start)
        both = factories.recipient(session, broadcast, state="read", sent_at=start, read_at=read)
        plain = factories.recipient(session, broadcast, state="sent", sent_at=start)
        rows = {row.id: row for row in services.recipients_page(session, broadcast.id, None, None, 10).items}
    assert rows[both.id].delivered_at.replace(tzinfo=None) == read.replace(tzinfo=None)
    assert rows[both.id].read_at.replace(tzinfo=None) == read.replace(tzinfo=None)
    assert (rows[plain.id].delivered_at, rows[plain.id].read_at) == (None, None)  # nothing is made up
