"""Migration 0013: the opt-outs and resumes SigDesk knew before keeping a history become each contact's
first consent event (source 'legacy'), and the current state follows them."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from alembic import command

from sigdesk.consent.services import current_consent
from sigdesk.db import Database, alembic_config
from sigdesk.models import ConsentEvent
from tests.mysql import recreate_database


@pytest.mark.database
def test_opt_outs_and_resumes_recorded_before_become_legacy_events(database_url, config):
    if database_url.startswith("mysql"):
        recreate_database(database_url)
    else:
        Path(make_url(database_url).database).parent.mkdir(parents=True, exist_ok=True)
    database = Database(database_url)
    cfg = alembic_config(database, config.migrations_dir)
    command.upgrade(cfg, "0012")
    rows = [
        ("15550000001", True, "2026-11-01 10:00:00"),  # stopped (Meta's preference or error 131050)
        ("15550000002", False, "2026-11-02 11:00:00"),  # stopped, then resumed
        ("15550000003", False, None),  # never said a word
        ("15550000004", True, None),  # anonymised before the time was kept
    ]
    with database.engine.begin() as connection:
        for wa_id, opted_out, changed_at in rows:
            connection.execute(
                sa.text(
                    "INSERT INTO contacts (wa_id, opted_out_marketing, opted_out_changed_at, created_at) "
                    "VALUES (:wa_id, :out, :changed, '2026-10-01 09:00:00')"
                ),
                {"wa_id": wa_id, "out": opted_out, "changed": changed_at},
            )
        ids = [row[0] for row in connection.execute(sa.text("SELECT id FROM contacts ORDER BY wa_id"))]
    command.upgrade(cfg, "head")
    with database.session() as session:
        assert current_consent(session, ids) == dict(zip(ids, ["opted_out", "opted_in", "unknown", "opted_out"]))
        events = session.scalars(sa.select(ConsentEvent).order_by(ConsentEvent.contact_id)).all()
        assert [(e.contact_id, e.status, e.source) for e in events] == [
            (ids[0], "opted_out", "legacy"),
            (ids[1], "opted_in", "legacy"),
            (ids[3], "opted_out", "legacy"),
        ]
        assert events[0].at.isoformat() == "2026-11-01T10:00:00+00:00"
        assert events[2].at.isoformat() == "2026-10-01T09:00:00+00:00"  # no time kept: when they were first seen
    database.engine.dispose()
