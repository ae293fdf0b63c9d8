"""record_consent: every opt-in and opt-out is kept as an event with its source, evidence and who; the
contact's current state follows the newest word; each word is audited and announced once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.consent.commands import record_consent
from sigdesk.consent.services import current_consent, history
from sigdesk.contacts.commands import anonymise, set_marketing_opt_out
from sigdesk.db import utcnow
from sigdesk.errors import NotFound, UserError
from sigdesk.models import ConsentEvent, Contact, Note
from sigdesk.paging import Cursor
from tests import factories
from tests.commanding import audit, events


def state_of(app, contact_id: int) -> tuple[str, bool]:
    with app.extensions["sigdesk"].database.session() as session:
        row = session.get(Contact, contact_id)
        return row.marketing_consent, row.opted_out_marketing


@pytest.mark.database
def test_an_agents_opt_out_is_kept_with_source_evidence_and_who_and_moves_the_current_state(app):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        agent = factories.user(session, "agent")
        conversation = factories.conversation(session)
        contact_id, conversation_id = conversation.contact_id, conversation.id
        assert current_consent(session, [contact_id]) == {contact_id: "unknown"}
        event = record_consent(
            session,
            Actor(agent, "web", "10.0.0.7"),
            contact_id,
            "opted_out",
            "agent",
            "  Please stop sending offers  ",
            conversation_id=conversation_id,
        )
        agent_id, agent_email, event_id = agent.id, agent.email, event.id
    assert state_of(app, contact_id) == ("opted_out", True)
    with database.session() as session:
        stored = session.get(ConsentEvent, event_id)
        assert (stored.status, stored.source, stored.evidence) == ("opted_out", "agent", "Please stop sending offers")
        assert (stored.actor_id, stored.channel, stored.message_id) == (agent_id, "web", None)
        note = session.scalars(select(Note).where(Note.conversation_id == conversation_id)).one()
        assert note.kind == "activity" and "opted out of marketing" in note.body and note.author_id == agent_id
    [entry] = audit(app, "contact.marketing_opt_out")
    assert (entry.actor, entry.channel, entry.target) == (agent_email, "web", f"contact {contact_id}")
    assert entry.detail == {"source": "agent", "consent_event_id": event_id}
    [announced] = events(app, "consent.recorded")
    assert announced == {
        "contact_id": contact_id,
        "consent_event_id": event_id,
        "status": "opted_out",
        "source": "agent",
        "previous": "unknown",
    }
    assert [e["fields"] for e in events(app, "contact.changed")] == [["marketing_consent", "opted_out_marketing"]]
    assert "Please stop" not in str(entry.detail) + str(announced)  # the customer's words stay out of logs


@pytest.mark.database
def test_the_newest_word_wins_and_an_older_or_repeated_one_records_nothing(app):
    database = app.extensions["sigdesk"].database
    now = utcnow().replace(microsecond=0)  # Meta's times are whole seconds (and MySQL keeps no more)
    with database.session() as session:
        contact_id = factories.contact(session).id
        system = Actor.system("webhook")
        assert record_consent(session, system, contact_id, "opted_out", "meta_preferences", at=now) is not None
        assert record_consent(session, system, contact_id, "opted_in", "meta_preferences", at=now) is None
        late = now - timedelta(minutes=5)
        assert record_consent(session, system, contact_id, "opted_in", "meta_preferences", at=late) is None
        assert set_marketing_opt_out(session, system, contact_id, False, late, "user_preferences") is False
        # said now (an agent, the API): newer than anything on record, even a clock ahead of ours
        ahead = now + timedelta(hours=1)
        assert record_consent(session, system, contact_id, "opted_out", "meta_preferences", at=ahead) is not None
        assert record_consent(session, Actor.system("cli"), contact_id, "opted_in", "form", "signed the form")
    assert state_of(app, contact_id) == ("opted_in", False)
    with database.session() as session:
        sources = session.scalars(select(ConsentEvent.status).where(ConsentEvent.contact_id == contact_id))
        assert sorted(sources) == ["opted_in", "opted_out", "opted_out"]
    assert len(events(app, "consent.recorded")) == 3


@pytest.mark.database
def test_a_word_carried_by_a_message_is_recorded_once_however_often_it_is_offered(app):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        conversation = factories.conversation(session)
        message = factories.message(session, conversation, text="STOP")
        args = (session, Actor.system(), conversation.contact_id, "opted_out", "whatsapp_keyword", "STOP")
        first = record_consent(*args, at=message.timestamp, message_id=message.id)
        assert first is not None
        assert record_consent(*args, at=message.timestamp + timedelta(seconds=1), message_id=message.id) is None
    assert len(audit(app, "contact.marketing_opt_out")) == 1


@pytest.mark.database
def test_bad_input_is_refused_naming_the_field_and_nothing_is_kept(app):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        contact_id = factories.contact(session).id
        actor = Actor.system("cli")
        cases = [
            (("maybe", "agent", None), "status"),
            (("opted_in", "carrier_pigeon", None), "source"),
            (("opted_in", "agent", 12), "evidence"),
            (("opted_in", "agent", "x" * 1001), "evidence"),
        ]
        for (status, source, evidence), field in cases:
            with pytest.raises(UserError) as refused:
                record_consent(session, actor, contact_id, status, source, evidence)
            assert refused.value.field == field
        with pytest.raises(NotFound) as missing:
            record_consent(session, actor, 999999, "opted_in", "agent")
        assert missing.value.field == "contact_id"
        assert session.scalar(select(ConsentEvent.id)) is None
    assert audit(app, "contact.marketing_opt_in") == [] and events(app, "consent.recorded") == []


@pytest.mark.database
def test_current_consent_reads_many_contacts_at_once_and_history_pages_newest_first(app):
    database = app.extensions["sigdesk"].database
    start = utcnow() - timedelta(days=1)
    with database.session() as session:
        ids = [factories.contact(session).id for _ in range(3)]
        for minute, status in enumerate(["opted_in", "opted_out", "opted_in", "opted_out", "opted_in"]):
            at = start + timedelta(minutes=minute)
            record_consent(session, Actor.system(), ids[0], status, "import", f"row {minute}", at=at)
        record_consent(session, Actor.system(), ids[1], "opted_out", "api")
    with database.session() as session:
        assert current_consent(session, [*ids, 424242]) == {ids[0]: "opted_in", ids[1]: "opted_out", ids[2]: "unknown"}
        assert current_consent(session, []) == {}
        first = history(session, ids[0], None, 2)
        assert [event.evidence for event in first.items] == ["row 4", "row 3"] and first.next_cursor
        rest = history(session, ids[0], Cursor.decode(first.next_cursor), 10)
        assert [event.evidence for event in rest.items] == ["row 2", "row 1", "row 0"] and rest.next_cursor is None
        with pytest.raises(NotFound):
            history(session, 999999, None, 10)


@pytest.mark.database
def test_an_anonymised_contact_is_opted_out(app, tmp_path):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        contact_id = factories.contact(session).id
        record_consent(session, Actor.system(), contact_id, "opted_in", "form")
    with database.session() as session:
        anonymise(session, Actor.system("cli"), contact_id, tmp_path)
    assert state_of(app, contact_id) == ("opted_out", True)
