"""What a merge leaves behind and who hears of it: anonymising the kept contact erases the merged contacts'
snapshots, dismissing a pair is an event, open inboxes drop a merged-away conversation, and a WhatsApp
profile name change shows in the next suggestions despite their cache."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from sigdesk.actor import Actor
from sigdesk.contacts import commands as contacts
from sigdesk.db import utcnow
from sigdesk.merge import commands, services
from sigdesk.models import Contact, ContactMerge
from tests import factories
from tests.commanding import events
from tests.lifecycle.helpers import Api
from tests.merge.test_commands import _pair

pytestmark = pytest.mark.database

# What the merged contact of _pair is, every bit of it personal.
SECRETS = ("Jo Merged", "Jo M", "4917012345678", "jo@work.example", "Berlin", "DE222")


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


def admin(session) -> Actor:
    return Actor(factories.user(session, "admin"), "cli")


def stored_merges(session) -> str:
    return "\n".join(f"{row.snapshot}\n{row.picks}" for row in session.scalars(select(ContactMerge)))


def test_anonymising_the_kept_contact_erases_the_merged_contacts_personal_data(app, database):
    with database.session() as session:
        actor = admin(session)
        kept, merged, *_ = _pair(session)
        kept_id, merged_id = kept.id, merged.id
        earlier = factories.contact(session, "4915550001111", "Old Record", display_name="Old Record Name")
        earlier_id = earlier.id
        commands.merge_contacts(session, actor, merged_id, earlier_id)  # a merge the merged contact held
        commands.merge_contacts(session, actor, kept_id, merged_id, {"city": "merge"})
        session.commit()
        assert all(secret in stored_merges(session) for secret in SECRETS)
    with database.session() as session:
        contacts.anonymise(session, admin(session), kept_id, app.extensions["sigdesk"].config.data_dir)
        session.commit()
    with database.session() as session:
        stored = stored_merges(session)
        for secret in (*SECRETS, "Old Record", "4915550001111"):
            assert secret not in stored
        rows = session.scalars(select(ContactMerge).order_by(ContactMerge.id)).all()
        assert [(row.merged_id, row.into_id, row.kept_id) for row in rows] == [
            (earlier_id, merged_id, kept_id),
            (merged_id, kept_id, kept_id),
        ]
        assert all(row.actor_id == actor.user_id and row.created_at is not None for row in rows)
        assert set(json.loads(rows[1].snapshot)) == {"created_at", "anonymised"}

    described = Api.of(app, "admin").call("GET", f"/contacts/{kept_id}/merges")
    assert described.status_code == 200
    for secret in SECRETS:
        assert secret not in described.get_data(as_text=True)
    latest = described.get_json()["items"][0]
    assert (latest["merged_id"], latest["into_id"], latest["actor_id"]) == (merged_id, kept_id, actor.user_id)
    assert latest["merged"]["anonymised"] is True and latest["picks"]["city"] == "merge"
    assert f"Contact {merged_id}" in latest["summary"] and f"into contact {kept_id}" in latest["summary"]


def test_anonymising_a_contact_without_merges_or_another_contact_leaves_merges_alone(app, database):
    with database.session() as session:
        actor = admin(session)
        kept, merged, *_ = _pair(session)
        bystander = factories.contact(session, "4915550002222", "Bystander")
        commands.merge_contacts(session, actor, kept.id, merged.id)
        session.commit()
        before = stored_merges(session)
        contacts.anonymise(session, actor, bystander.id, app.extensions["sigdesk"].config.data_dir)
        session.commit()
        assert stored_merges(session) == before


def test_dismissing_a_pair_is_an_event_once(app, database):
    with database.session() as session:
        a, b = factories.contact(session, name="Ana Souza"), factories.contact(session, name="Ana Souza")
        actor = admin(session)
        assert commands.dismiss(session, actor, b.id, a.id) is True
        assert commands.dismiss(session, actor, a.id, b.id) is False
        session.commit()
        low, high = sorted((a.id, b.id))
    assert events(app, "contacts.not_duplicates") == [{"low_id": low, "high_id": high}]


def test_open_inboxes_hear_that_a_merged_away_conversation_changed(app, database):
    bus = app.extensions["sigdesk"].events
    with database.session() as session:
        kept, merged, (mine, theirs), *_ = _pair(session)
        session.commit()
        listening = bus.subscribe()
        commands.merge_contacts(session, admin(session), kept.id, merged.id)
        session.commit()
    try:
        heard = [(event.kind, event.conversation_id) for event in listening.get(1.0)]
    finally:
        listening.close()
    assert ("conversation.updated", theirs) in heard, "the inbox list reloads and an open thread says it is gone"
    assert ("note.created", mine) in heard
    assert events(app, "conversation.merged") == [{"conversation_id": theirs, "assignee_id": None, "into_id": mine}]


def test_a_whatsapp_profile_name_change_shows_in_the_next_suggestions(database, monkeypatch):
    scans = []
    real = services.find_pairs
    monkeypatch.setattr(services, "find_pairs", lambda session: scans.append(1) or real(session))
    with database.session() as session:
        a = factories.contact(session, "491709990001", "Bea Kraus")
        b = factories.contact(session, "491709990002", "Someone Else")
        session.commit()
        a_id, b_id = a.id, b.id
        assert (a_id, b_id) not in {(p.first.id, p.second.id) for p in services.suggestions(session).items}
        services.suggestions(session)
        assert len(scans) == 1, "nothing changed: the cache answers"
        # ingest: an inbound message moves last_inbound_at and only sometimes renames (updated_at stays)
        contacts_table = Contact.__table__
        session.execute(update(contacts_table).where(contacts_table.c.id == a_id).values(last_inbound_at=utcnow()))
        session.commit()
        services.suggestions(session)
        assert len(scans) == 1, "a message without a new name keeps the cache"
        session.execute(
            update(contacts_table)
            .where(contacts_table.c.id == b_id)
            .values(profile_name="bea  KRAUS", last_inbound_at=utcnow())
        )
        session.commit()
        found = services.suggestions(session).items
        assert len(scans) == 2
        assert [(p.first.id, p.second.id, p.reasons) for p in found] == [(a_id, b_id, ["name"])]
