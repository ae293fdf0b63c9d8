"""merge_contacts: everything of the merged contact moves to the kept one, the picks decide each field, consent
follows the latest word, the merged contact is gone, and the merge is audited, announced and described."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.consent.commands import record_consent
from sigdesk.db import utcnow
from sigdesk.errors import NotFound, UserError
from sigdesk.lifecycle import commands as lifecycle
from sigdesk.merge import commands, services
from sigdesk.models import (
    ConsentEvent,
    Contact,
    ContactField,
    ContactFieldValue,
    ContactMerge,
    ContactStage,
    ContactTag,
    Conversation,
    ConversationLabel,
    Message,
    Note,
    StageChange,
)
from tests import factories
from tests.commanding import audit, events, everything_recorded

pytestmark = pytest.mark.database


def admin(session, role: str = "admin") -> Actor:
    return Actor(factories.user(session, role), "cli")


def custom_field(session, key: str, label: str, kind: str = "text") -> ContactField:
    field = ContactField(key=key, label=label, kind=kind, position=1, created_at=utcnow())
    session.add(field)
    session.flush()
    return field


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


def _pair(session):
    """Two records of one customer, each with a conversation, messages, notes, tags, a stage and consent."""
    now = utcnow()
    kept = factories.contact(
        session, "491701234567", "Jo", display_name="Jo Kept", email="jo@example.com", city=None, company="Kept Ltd"
    )
    kept.created_at, kept.first_inbound_at, kept.last_inbound_at = now - timedelta(days=5), now - timedelta(days=5), now
    merged = factories.contact(
        session, "4917012345678", "Jo M", display_name="Jo Merged", email="jo@work.example", city="Berlin"
    )
    merged.created_at = now - timedelta(days=50)
    merged.first_inbound_at = now - timedelta(days=40)
    merged.last_inbound_at = now - timedelta(days=1)
    mine, theirs = factories.conversation(session, kept), factories.conversation(session, merged, unread_count=2)
    factories.message(session, mine, text="kept hello")
    factories.message(session, theirs, text="merged quokka question")
    factories.message(session, theirs, direction="out", text="merged answer")
    factories.note(session, theirs, "merged note")
    factories.label(session, "vip", on=[theirs])
    system = Actor.system("cli")
    shared, only_merged = lifecycle.create_tag(session, system, "Shared"), lifecycle.create_tag(session, system, "Only")
    for contact_id, tag in ((kept.id, shared), (merged.id, shared), (merged.id, only_merged)):
        lifecycle.tag_contact(session, system, contact_id, tag.id)
    first, second = lifecycle.create_stage(session, system, "Lead A"), lifecycle.create_stage(session, system, "Won B")
    lifecycle.set_stage(session, system, kept.id, first.id)
    lifecycle.set_stage(session, system, merged.id, second.id)
    vat = custom_field(session, "vat", "VAT id")
    session.add_all(
        [
            ContactFieldValue(contact_id=kept.id, field_id=vat.id, text_value="DE111"),
            ContactFieldValue(contact_id=merged.id, field_id=vat.id, text_value="DE222"),
        ]
    )
    session.flush()
    record_consent(session, system, kept.id, "opted_in", "form", at=now - timedelta(days=3))
    record_consent(session, system, merged.id, "opted_out", "agent", at=now - timedelta(days=2))
    return kept, merged, (mine.id, theirs.id), (shared, only_merged), (first, second)


def test_a_merge_moves_everything_to_the_kept_contact_and_deletes_the_merged_one(app, database):
    with database.session() as session:
        actor = admin(session)
        kept, merged, (mine, theirs), (shared, only), _stages = _pair(session)
        kept_id, merged_id = kept.id, merged.id
        earliest = merged.created_at
        done = commands.merge_contacts(session, actor, kept_id, merged_id, {})
        session.commit()
        assert done.moved == {
            "conversations": 1,
            "messages": 2,
            "notes": 1,
            "tags": 1,
            "consent_events": 1,
            "stage_changes": 1,
        }
    with database.session() as session:
        assert session.get(Contact, merged_id) is None
        assert session.get(Conversation, theirs) is None
        assert session.scalar(select(Conversation.id).where(Conversation.contact_id == kept_id)) == mine
        texts = session.scalars(select(Message.text).where(Message.conversation_id == mine).order_by(Message.id))
        assert list(texts) == ["kept hello", "merged quokka question", "merged answer"]
        assert session.scalar(select(func.count()).select_from(Message).where(Message.contact_id == kept_id)) == 3
        notes = session.execute(select(Note.body, Note.kind).where(Note.conversation_id == mine)).all()
        assert ("merged note", "note") in notes and any(kind == "activity" for _body, kind in notes)
        assert session.scalar(select(func.count()).select_from(ConversationLabel)) == 1
        conversation = session.get(Conversation, mine)
        assert conversation.unread_count == 2
        tags = set(session.scalars(select(ContactTag.tag_id).where(ContactTag.contact_id == kept_id)))
        assert tags == {shared.id, only.id}
        assert (
            session.scalar(select(func.count()).select_from(StageChange).where(StageChange.contact_id == kept_id)) == 2
        )
        assert set(session.scalars(select(ConsentEvent.contact_id))) == {kept_id}
        contact = session.get(Contact, kept_id)
        assert contact.wa_id == "491701234567", "the kept contact keeps its own WhatsApp number"
        assert contact.profile_name == "Jo"
        assert abs((contact.created_at - earliest).total_seconds()) < 2, "the earliest creation wins"
        assert contact.first_inbound_at < contact.last_inbound_at
        assert session.scalar(select(func.count()).select_from(ContactMerge)) == 1


def test_by_default_the_kept_values_win_and_empty_ones_are_filled(database):
    with database.session() as session:
        kept, merged, _c, _t, (first, _second) = _pair(session)
        commands.merge_contacts(session, admin(session), kept.id, merged.id)
        session.commit()
        contact = session.get(Contact, kept.id)
        assert (contact.display_name, contact.email, contact.company, contact.city) == (
            "Jo Kept",
            "jo@example.com",
            "Kept Ltd",
            "Berlin",
        )
        assert session.get(ContactStage, kept.id).stage_id == first.id
        assert session.scalar(select(ContactFieldValue.text_value).where(ContactFieldValue.contact_id == kept.id)) == (
            "DE111"
        )


def test_the_picks_decide_each_conflicting_field(app, database):
    with database.session() as session:
        kept, merged, _c, _t, (_first, second) = _pair(session)
        picks = {"name": "merge", "email": "merge", "stage": "merge", "custom.vat": "merge", "company": "merge"}
        done = commands.merge_contacts(session, admin(session), kept.id, merged.id, picks)
        session.commit()
        contact = session.get(Contact, kept.id)
        assert (contact.display_name, contact.email, contact.company) == ("Jo Merged", "jo@work.example", None)
        assert session.get(ContactStage, kept.id).stage_id == second.id
        last = session.scalars(
            select(StageChange).where(StageChange.contact_id == kept.id).order_by(StageChange.id.desc())
        ).first()
        assert last.stage_id == second.id
        assert session.scalar(select(ContactFieldValue.text_value).where(ContactFieldValue.contact_id == kept.id)) == (
            "DE222"
        )
        assert {"name", "email", "company", "stage", "custom.vat"} <= set(done.fields)
    [changed] = events(app, "contact.stage_changed")[-1:]
    assert changed["contact_id"] == kept.id and changed["stage_id"] == second.id


def test_consent_follows_the_latest_word_of_either_contact(database):
    with database.session() as session:
        kept, merged, *_ = _pair(session)
        session.refresh(kept)
        session.refresh(merged)
        assert (kept.marketing_consent, merged.marketing_consent) == ("opted_in", "opted_out")
        commands.merge_contacts(session, admin(session), kept.id, merged.id)
        session.commit()
        contact = session.get(Contact, kept.id)
        assert (contact.marketing_consent, contact.opted_out_marketing) == ("opted_out", True)


def test_an_older_opt_out_of_the_merged_contact_does_not_override_a_later_opt_in(database):
    with database.session() as session:
        system = Actor.system("cli")
        kept, merged = factories.contact(session), factories.contact(session)
        record_consent(session, system, merged.id, "opted_out", "agent", at=utcnow() - timedelta(days=9))
        record_consent(session, system, kept.id, "opted_in", "form", at=utcnow() - timedelta(days=1))
        commands.merge_contacts(session, admin(session), kept.id, merged.id)
        session.commit()
        contact = session.get(Contact, kept.id)
        assert (contact.marketing_consent, contact.opted_out_marketing) == ("opted_in", False)


def test_a_kept_contact_without_a_number_or_conversation_takes_the_merged_ones(database):
    with database.session() as session:
        kept = Contact(display_name="Hand made", email="x@example.com", created_at=utcnow())
        session.add(kept)
        session.flush()
        merged = factories.contact(session, "5511987654321", "Ana")
        conversation = factories.conversation(session, merged)
        factories.message(session, conversation)
        commands.merge_contacts(session, admin(session), kept.id, merged.id)
        session.commit()
        contact = session.get(Contact, kept.id)
        assert (contact.wa_id, contact.profile_name) == ("5511987654321", "Ana")
        assert session.get(Conversation, conversation.id).contact_id == kept.id


def test_a_merge_into_itself_is_refused_naming_merge_id(database):
    with database.session() as session:
        contact = factories.contact(session)
        with pytest.raises(UserError) as refused:
            commands.merge_contacts(session, admin(session), contact.id, contact.id)
        assert refused.value.status == 422 and refused.value.field == "merge_id"
        assert "itself" in refused.value.message


def test_unknown_contacts_and_picks_are_refused_naming_the_field(database):
    with database.session() as session:
        actor = admin(session)
        contact, other = factories.contact(session), factories.contact(session)
        with pytest.raises(NotFound) as unknown:
            commands.merge_contacts(session, actor, contact.id, 999_999)
        assert unknown.value.field == "merge_id"
        with pytest.raises(NotFound) as unknown:
            commands.merge_contacts(session, actor, 999_999, contact.id)
        assert unknown.value.field == "contact_id"
        for picks in ({"shoe_size": "keep"}, {"email": "both"}, ["email"]):
            with pytest.raises(UserError) as bad:
                commands.merge_contacts(session, actor, contact.id, other.id, picks)
            assert bad.value.field == "picks"
        assert session.get(Contact, other.id) is not None


def test_agents_may_not_merge(database):
    with database.session() as session:
        contact, other = factories.contact(session), factories.contact(session)
        with pytest.raises(UserError) as refused:
            commands.merge_contacts(session, admin(session, "agent"), contact.id, other.id)
        assert refused.value.status == 403
        with pytest.raises(UserError):
            commands.dismiss(session, admin(session, "agent"), contact.id, other.id)


def test_a_merge_is_audited_announced_and_described_afterwards_without_names_in_the_log(app, database):
    with database.session() as session:
        actor = admin(session)
        kept, merged, *_ = _pair(session)
        kept_id, merged_id, email = kept.id, merged.id, actor.user.email
        done = commands.merge_contacts(session, actor, kept_id, merged_id, {"email": "merge"})
        session.commit()
        [described] = services.merges_of(session, kept_id)
    [entry] = audit(app, "contact.merged")
    assert (entry.actor, entry.target) == (email, f"contact {kept_id}")
    assert entry.detail["kept_id"] == kept_id and entry.detail["merged_id"] == merged_id
    assert entry.detail["picks"]["email"] == "merge" and entry.detail["picks"]["name"] == "keep"
    assert events(app, "contacts.merged") == [{"kept_id": kept_id, "merged_id": merged_id, "merge_id": done.merge_id}]
    recorded = everything_recorded(app)
    for secret in ("Jo Merged", "4917012345678", "jo@work.example"):
        assert secret not in recorded
    assert (described.merged_id, described.into_id, described.actor_id) == (merged_id, kept_id, actor.user_id)
    assert described.merged["name"] == "Jo Merged" and described.merged["phone"] == "4917012345678"
    assert described.merged["custom"] == {"vat": "DE222"} and described.merged["stage"] == "Won B"
    assert described.picks["email"] == "merge"
    assert described.summary.startswith(actor.user.name) and f"into contact {kept_id}" in described.summary


def test_merges_follow_a_kept_contact_that_is_merged_later(database):
    with database.session() as session:
        actor = admin(session)
        a, b, c = factories.contact(session), factories.contact(session), factories.contact(session)
        commands.merge_contacts(session, actor, b.id, a.id)
        commands.merge_contacts(session, actor, c.id, b.id)
        session.commit()
        described = services.merges_of(session, c.id)
        assert [(m.merged_id, m.into_id) for m in described] == [(b.id, c.id), (a.id, b.id)]


def test_custom_values_of_other_kinds_are_shown_and_moved(database):
    with database.session() as session:
        kept, merged = factories.contact(session), factories.contact(session)
        born = custom_field(session, "born", "Born", "date")
        session.add(ContactFieldValue(contact_id=merged.id, field_id=born.id, date_value=date(1990, 5, 1)))
        session.flush()
        [choice] = [c for c in services.preview(session, kept.id, merged.id).fields if c.field == "custom.born"]
        assert (choice.kept, choice.merged, choice.conflict, choice.default) == (None, "1990-05-01", False, "merge")
        commands.merge_contacts(session, admin(session), kept.id, merged.id)
        session.commit()
        assert session.scalar(select(ContactFieldValue.date_value).where(ContactFieldValue.contact_id == kept.id)) == (
            date(1990, 5, 1)
        )
