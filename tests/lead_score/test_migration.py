"""Migration 0017: every contact starts scored 0 with no reasons, and who already answered a business
message within 24 hours is learnt from the stored messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import make_url

from sigdesk.db import Database, alembic_config
from sigdesk.models import Contact
from tests.mysql import recreate_database


@pytest.mark.database
def test_contacts_start_at_zero_and_replies_within_a_day_are_learnt_from_the_messages(database_url, config):
    if database_url.startswith("mysql"):
        recreate_database(database_url)
    else:
        Path(make_url(database_url).database).parent.mkdir(parents=True, exist_ok=True)
    database = Database(database_url)
    cfg = alembic_config(database, config.migrations_dir)
    command.upgrade(cfg, "0016")
    messages = {
        "15550000001": [("out", "2026-11-01 10:00:00"), ("in", "2026-11-02 09:00:00")],  # 23 hours later
        "15550000002": [("out", "2026-11-01 10:00:00"), ("in", "2026-11-02 11:00:00")],  # 25 hours later
        "15550000003": [("in", "2026-11-01 10:00:00"), ("out", "2026-11-01 10:05:00")],  # wrote first
        "15550000004": [],
    }
    with database.engine.begin() as connection:
        for number, (wa_id, sent) in enumerate(messages.items()):
            contact_id = connection.execute(
                sa.text("INSERT INTO contacts (wa_id, opted_out_marketing, created_at) VALUES (:wa_id, 0, :at)"),
                {"wa_id": wa_id, "at": "2026-10-01 09:00:00"},
            ).lastrowid
            conversation_id = connection.execute(
                sa.text(
                    "INSERT INTO conversations (contact_id, status, unread_count, created_at) "
                    "VALUES (:id, 'open', 0, '2026-10-01 09:00:00')"
                ),
                {"id": contact_id},
            ).lastrowid
            for index, (direction, at) in enumerate(sent):
                connection.execute(
                    sa.text(
                        "INSERT INTO messages (conversation_id, contact_id, wamid, direction, type, forwarded, "
                        "frequently_forwarded, timestamp, created_at, attempts) "
                        "VALUES (:conversation, :contact, :wamid, :direction, 'text', 0, 0, :at, :at, 0)"
                    ),
                    {
                        "conversation": conversation_id,
                        "contact": contact_id,
                        "wamid": f"wamid.M{number}.{index}",
                        "direction": direction,
                        "at": at,
                    },
                )
    command.upgrade(cfg, "head")
    with database.session() as session:
        rows = session.execute(
            sa.select(
                Contact.wa_id, Contact.lead_score, Contact.lead_score_reasons, Contact.replied_within_day_at
            ).order_by(Contact.wa_id)
        ).all()
        assert [(row.lead_score, row.lead_score_reasons) for row in rows] == [(0, "[]")] * 4
        assert [row.replied_within_day_at and row.replied_within_day_at.isoformat() for row in rows] == [
            "2026-11-02T09:00:00+00:00",
            None,
            None,
            None,
        ]
    database.engine.dispose()
