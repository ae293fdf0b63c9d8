"""A contact's timeline: every source merged newest first, paged by keyset without repeats or gaps even when
entries of different sources share a second, and open to sources other features register (orders)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.contacts.commands import update_contact
from sigdesk import timeline as timelines
from sigdesk.timeline import TimelineEntry, keyset, register_source, timeline
from sigdesk.custom_fields.commands import define_field
from sigdesk.db import utcnow
from sigdesk.errors import NotFound, UserError
from sigdesk.models import AuditEvent, ConsentEvent, Note, StageChange, Tag
from sigdesk.settings import services as settings
from tests import factories

pytestmark = pytest.mark.database

START = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def history(session, moments: dict[str, int]) -> int:
    """A contact with one entry of each kind, at the minutes given."""
    contact = factories.contact(session)
    conversation = factories.conversation(session, contact, created_at=at(moments["conversation"]))
    vip = Tag(name="VIP", name_key="vip-key", color=1, created_at=at(0))
    session.add(vip)
    session.flush()
    session.add_all(
        [
            Note(conversation_id=conversation.id, body="Wants the tart", kind="note", created_at=at(moments["note"])),
            Note(conversation_id=conversation.id, body="Olive resolved", kind="activity", created_at=at(1)),
            StageChange(contact_id=contact.id, stage_name="Lead", channel="web", changed_at=at(moments["stage"])),
            ConsentEvent(
                contact_id=contact.id,
                status="opted_out",
                source="whatsapp_keyword",
                evidence="STOP",
                at=at(moments["consent"]),
                created_at=at(moments["consent"]),
            ),
            AuditEvent(
                action="contact.tag",
                target=f"contact {contact.id}",
                detail=json.dumps({"tag_id": vip.id}),
                at=at(moments["tag"]),
            ),
            AuditEvent(
                action="contact.updated",
                target=f"contact {contact.id}",
                detail=json.dumps({"fields": ["email", "owner_id"]}),
                at=at(moments["record"]),
            ),
            AuditEvent(
                action="conversation.status",
                target=f"conversation:{conversation.id}",
                detail=json.dumps({"from": "open", "to": "resolved"}),
                at=at(moments["resolved"]),
            ),
            AuditEvent(action="contact.updated", target="contact 999999", at=at(99)),  # someone else's
        ]
    )
    session.flush()
    return contact.id


def test_every_source_is_on_the_timeline_newest_first(app):
    moments = {"conversation": 1, "note": 2, "stage": 3, "resolved": 4, "tag": 5, "consent": 6, "record": 7}
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = history(session, moments)
        found = timeline(session, factories.user(session, "admin"), contact_id)
    assert [entry.kind for entry in found.items] == [
        "record.edited",
        "consent.opted_out",
        "tag.on",
        "conversation.resolved",
        "stage.changed",
        "note",
        "conversation.started",
    ]
    titles = {entry.kind: entry for entry in found.items}
    assert titles["tag.on"].title == "Tagged VIP"
    assert titles["record.edited"].title == "Record edited: email, owner"
    assert titles["consent.opted_out"].detail == "STOP"
    assert titles["note"].detail == "Wants the tart" and titles["note"].link.startswith("inbox:")
    assert titles["stage.changed"].title == "Stage set to Lead"
    assert found.next_cursor is None


def test_paging_by_keyset_repeats_and_skips_nothing_when_sources_share_a_second(app):
    same = {"conversation": 5, "note": 5, "stage": 5, "resolved": 5, "tag": 5, "consent": 5, "record": 5}
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = history(session, same)
        for minute in range(12):
            session.add(StageChange(contact_id=contact_id, stage_name=f"S{minute}", changed_at=at(minute % 4)))
        session.flush()
        admin = factories.user(session, "admin")
        whole = [(entry.source, entry.id) for entry in timeline(session, admin, contact_id, limit=100).items]
        paged, cursor = [], None
        while True:
            found = timeline(session, admin, contact_id, before=cursor, limit=4)
            paged.extend((entry.source, entry.id) for entry in found.items)
            cursor = found.next_cursor
            if cursor is None:
                break
    assert len(whole) == 19 and paged == whole


def test_a_position_the_timeline_did_not_give_out_is_refused_naming_it(app):
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session).id
        admin = factories.user(session, "admin")
        for bad in ("not-a-cursor", "W10", "x" * 500):
            with pytest.raises(UserError) as refused:
                timeline(session, admin, contact_id, before=bad)
            assert refused.value.field == "before"
        with pytest.raises(NotFound):
            timeline(session, admin, 999_999)


def test_another_feature_adds_its_entries_by_registering_a_source(app):
    def orders(session, contact_id, before, limit):
        query = keyset(
            select(Note.id, Note.created_at).where(Note.kind == "order"),
            "order",
            Note.created_at,
            Note.id,
            before,
            limit,
        )
        return [
            TimelineEntry(at=row.created_at, source="order", id=row.id, kind="order.placed", title="Order placed")
            for row in session.execute(query)
        ]

    register_source("order", orders)
    try:
        with app.extensions["sigdesk"].database.session() as session:
            conversation = factories.conversation(session, created_at=at(0))
            session.add(Note(conversation_id=conversation.id, body="#1", kind="order", created_at=at(3)))
            session.flush()
            reader = factories.user(session, "admin")
            kinds = [entry.kind for entry in timeline(session, reader, conversation.contact_id).items]
        assert kinds == ["order.placed", "conversation.started"]
    finally:
        timelines._sources.pop("order")


def _kinds(session, reader, contact_id: int) -> list[str]:
    return [entry.kind for entry in timeline(session, reader, contact_id, limit=100).items]


def test_an_agent_sees_nothing_of_a_conversation_assigned_to_someone_else(app):
    """A team note is for those who may open its conversation: the contact page is no way around the inbox."""
    with app.extensions["sigdesk"].database.session() as session:
        ada, bob, admin = (factories.user(session, role) for role in ("agent", "agent", "admin"))
        contact = factories.contact(session)
        theirs = factories.conversation(session, contact, assignee_id=bob.id, created_at=at(1))
        factories.note(session, theirs, "Bob's secret note")
        session.add(
            AuditEvent(
                action="conversation.status",
                target=f"conversation:{theirs.id}",
                detail=json.dumps({"to": "resolved"}),
                at=at(2),
            )
        )
        session.flush()
        assert _kinds(session, ada, contact.id) == []
        assert sorted(_kinds(session, bob, contact.id)) == ["conversation.resolved", "conversation.started", "note"]
        assert sorted(_kinds(session, admin, contact.id)) == ["conversation.resolved", "conversation.started", "note"]
        settings.set_value(session, app.extensions["sigdesk"].cipher, "inbox.agents_see_all", True)
        session.flush()
        assert sorted(_kinds(session, ada, contact.id)) == ["conversation.resolved", "conversation.started", "note"]


def test_an_agent_sees_the_notes_of_their_own_and_unassigned_conversations(app):
    with app.extensions["sigdesk"].database.session() as session:
        ada = factories.user(session, "agent")
        contact = factories.contact(session)
        factories.note(session, factories.conversation(session, contact, created_at=at(1)), "Unassigned note")
        session.flush()
        entries = timeline(session, ada, contact.id).items
        assert [entry.detail for entry in entries if entry.kind == "note"] == ["Unassigned note"]


def test_a_record_edit_names_custom_fields_by_their_label_and_a_deleted_one_by_its_key(app):
    with app.extensions["sigdesk"].database.session() as session:
        admin = factories.user(session, "admin")
        actor = Actor(admin, "web")
        define_field(session, actor, "Customer number", "text")
        contact = factories.contact(session)
        update_contact(session, actor, contact.id, {"fields": {"customer_number": "C-7"}, "city": "Porto"})
        session.add(
            AuditEvent(
                action="contact.updated",
                target=f"contact {contact.id}",
                detail=json.dumps({"fields": ["fields.gone_field"]}),
                at=utcnow() - timedelta(days=1),
            )
        )
        session.flush()
        titles = [entry.title for entry in timeline(session, admin, contact.id).items if entry.kind == "record.edited"]
    assert titles == ["Record edited: city, Customer number", "Record edited: gone field"]
