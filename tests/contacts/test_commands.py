"""Contact commands: anonymising (from Admin → Exports and as a command) and marketing consent
(the user_preferences webhook, Meta's error 131050, and the command itself) leave the same trail."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.auth import services as accounts
from sigdesk.contacts.commands import MARKETING_STOPPED, anonymise, remove_files, set_marketing_opt_out
from sigdesk.errors import NotFound
from sigdesk.models import Contact, Conversation, Message, Reaction
from sigdesk.outbound import services as outbound
from sigdesk.whatsapp_account.services import client_or_none
from tests import factories
from tests.backup.seed import MESSAGE_TYPES, media_files, seed
from tests.commanding import audit, events
from tests.conftest import csrf_from
from tests.inbox.helpers import FIXTURES, customer_writes, deliver
from tests.outbound.test_sending import APP_SECRET, connect, inbound

BOB = "15551230002"  # the customer of the user_preferences fixtures


def contact_ids(app) -> list[int]:
    with app.extensions["sigdesk"].database.session() as session:
        return list(session.scalars(select(Contact.id).order_by(Contact.id)))


def as_owner(session, owner) -> Actor:
    return Actor(accounts.find_user(session, owner.email), "cli")


# --- anonymising -----------------------------------------------------------------------------------


@pytest.mark.database
def test_anonymising_clears_identity_content_and_media_and_is_audited(app, tmp_path):
    seed(app)
    state = app.extensions["sigdesk"]
    data_dir = state.config.data_dir
    with state.database.session() as session:
        contact = session.scalars(select(Contact).order_by(Contact.id)).first()
        other = session.scalars(select(Contact).order_by(Contact.id.desc())).first()
        shared = session.scalars(
            select(Message).where(Message.contact_id == other.id, Message.storage_key.is_not(None))
        ).first()
        # The same bytes sent by two contacts are stored once; erasing one must not break the other.
        mine = session.scalars(select(Message).where(Message.contact_id == contact.id, Message.type == "image")).one()
        mine.storage_key = shared.storage_key
        wa_id, contact_id = contact.wa_id, contact.id
    before = media_files(data_dir)
    with state.database.session() as session:
        doomed = anonymise(session, Actor.system("cli"), contact_id, data_dir)
    assert remove_files(doomed) == 4
    assert len(media_files(data_dir)) == len(before) - 4
    with state.database.session() as session:
        contact = session.get(Contact, contact_id)
        assert (contact.wa_id, contact.profile_name, contact.user_id) == (None, None, None)
        assert contact.name == f"Anonymised contact {contact_id}" and contact.opted_out_marketing is True
        messages = session.scalars(select(Message).where(Message.contact_id == contact_id)).all()
        assert len(messages) == len(MESSAGE_TYPES)
        assert all(m.text is None and m.raw is None and m.details is None and m.storage_key is None for m in messages)
        assert session.scalars(select(Reaction).where(Reaction.contact_id == contact_id)).one().emoji is None
        assert session.scalars(select(Conversation).where(Conversation.contact_id == contact_id)).one()
        assert (data_dir / shared.storage_key).is_file()
    [entry] = audit(app, "contact.anonymised")
    assert entry.target == f"contact {contact_id}" and wa_id not in str(entry.detail)
    assert events(app, "contact.changed") == [{"contact_id": contact_id, "fields": ["anonymised"]}]


def test_anonymising_from_the_exports_page_and_as_a_command_leaves_the_same_trail(app, auth, owner):
    seed(app)
    first, second = contact_ids(app)[:2]
    page = csrf_from(auth.client.get("/admin/exports/").get_data(as_text=True))
    done = auth.client.post(
        "/admin/exports/contact/anonymise",
        data={"csrf_token": page, "contact_id": str(first), "confirm": "ANONYMISE"},
        follow_redirects=True,
    )
    assert "anonymised; 5 media files deleted" in done.get_data(as_text=True)
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        remove_files(anonymise(session, as_owner(session, owner), second, state.config.data_dir))

    by_page, by_command = audit(app, "contact.anonymised")
    assert (by_page.target, by_page.actor, by_page.channel) == (f"contact {first}", owner.email, "web")
    assert (by_command.target, by_command.actor, by_command.channel) == (f"contact {second}", owner.email, "cli")
    assert by_page.detail == by_command.detail == {"messages": len(MESSAGE_TYPES), "media_files": 5, "notes": 0}
    assert events(app, "contact.changed") == [
        {"contact_id": first, "fields": ["anonymised"]},
        {"contact_id": second, "fields": ["anonymised"]},
    ]


def test_anonymising_someone_unknown_is_a_404_that_changes_nothing(app, auth, owner, tmp_path):
    with app.extensions["sigdesk"].database.session() as session:
        with pytest.raises(NotFound, match="no contact 999"):
            anonymise(session, Actor.system("cli"), 999, tmp_path)
    page = csrf_from(auth.client.get("/admin/exports/").get_data(as_text=True))
    missing = auth.client.post(
        "/admin/exports/contact/anonymise", data={"csrf_token": page, "contact_id": "999", "confirm": "ANONYMISE"}
    )
    assert missing.status_code == 404 and "no contact 999" in missing.get_data(as_text=True)
    assert audit(app, "contact.anonymised") == [] and events(app, "contact.changed") == []


# --- marketing consent -----------------------------------------------------------------------------


def consent(app, wa_id: str) -> tuple[bool, datetime | None]:
    with app.extensions["sigdesk"].database.session() as session:
        row = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        return row.opted_out_marketing, row.opted_out_changed_at


@pytest.mark.database
def test_a_marketing_stop_from_the_webhook_and_the_command_leave_the_same_trail(app, owner):
    database = app.extensions["sigdesk"].database
    deliver(database, (FIXTURES / "user_preferences_stop.json").read_bytes())
    said_at = datetime.fromtimestamp(1731705000, tz=timezone.utc)
    assert consent(app, BOB) == (True, said_at)
    customer_writes(database, "15550004444", name="Carla")
    with database.session() as session:
        carla = session.scalar(select(Contact.id).where(Contact.wa_id == "15550004444"))
        assert set_marketing_opt_out(session, as_owner(session, owner), carla, True, reason="asked by phone") is True
    assert consent(app, "15550004444")[0] is True

    by_webhook, by_command = audit(app, "contact.marketing_opt_out")
    assert (by_webhook.actor, by_webhook.channel, by_webhook.detail["source"]) == (
        None,
        "webhook",
        "meta_preferences",
    )
    assert (by_command.actor, by_command.channel, by_command.detail["source"]) == (owner.email, "cli", "agent")
    stops = [event for event in events(app, "contact.changed") if "opted_out_marketing" in event["fields"]]
    assert [event["contact_id"] for event in stops] == [int(by_webhook.target.split()[1]), carla]


@pytest.mark.database
def test_the_newest_word_on_consent_wins_and_an_older_one_leaves_no_trail(app):
    database = app.extensions["sigdesk"].database
    deliver(database, (FIXTURES / "user_preferences_resume.json").read_bytes())
    deliver(database, (FIXTURES / "user_preferences_stop.json").read_bytes())  # older, delivered late
    resumed, at = consent(app, BOB)
    assert resumed is False
    with database.session() as session:
        bob = session.scalar(select(Contact.id).where(Contact.wa_id == BOB))
        assert set_marketing_opt_out(session, Actor.system(), bob, True, at - timedelta(seconds=1)) is False
        with pytest.raises(NotFound):
            set_marketing_opt_out(session, Actor.system(), 999999, True)
    assert consent(app, BOB) == (False, at)
    assert len(audit(app, "contact.marketing_opt_in")) == 1 and audit(app, "contact.marketing_opt_out") == []


def test_meta_refusing_a_marketing_send_with_131050_opts_the_customer_out(app, owner, fake_graph):
    """Whether Meta says it in its answer to the send or later in a failed status."""
    connect(app, fake_graph)
    raw, headers = factories.signed(inbound("wamid.IN131050"), APP_SECRET)
    assert app.test_client().post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        conversation = session.query(Conversation).one()
        contact_id = conversation.contact_id
        message_id = outbound.queue(session, conversation, "text", {"body": "Spring sale!"}).id
    fake_graph.fail_next(MARKETING_STOPPED)
    with state.database.session() as session:
        outbound.send_due(session, lambda s: client_or_none(s, state.cipher))
    with state.database.session() as session:
        assert session.get(Message, message_id).status == "failed"
        assert session.get(Contact, contact_id).opted_out_marketing is True
        session.get(Contact, contact_id).opted_out_marketing = False
        session.get(Contact, contact_id).opted_out_changed_at = None
        session.get(Message, message_id).wamid = "wamid.OUT131050"
    [by_sender] = audit(app, "contact.marketing_opt_out")
    assert (by_sender.channel, by_sender.detail["source"]) == ("worker", "meta_error_131050")

    error = {"code": MARKETING_STOPPED, "title": "User has stopped marketing messages"}
    deliver(state.database, factories.status_update("wamid.OUT131050", "failed", "15550001111", errors=[error]))
    with state.database.session() as session:
        assert session.get(Contact, contact_id).opted_out_marketing is True
    by_webhook = audit(app, "contact.marketing_opt_out")[-1]
    assert (by_webhook.channel, by_webhook.detail["source"]) == ("webhook", "meta_error_131050")
