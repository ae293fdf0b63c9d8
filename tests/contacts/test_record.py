"""The contact record: its field rules, the commands that change it (the same trail from the API and a
direct call, as an import makes), the message times the webhook and sending keep, and the migration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.contacts import commands
from sigdesk.contacts.fields import COUNTRIES, clean
from sigdesk.db import utcnow
from sigdesk.errors import Conflict, Refused, UserError
from sigdesk.models import Contact
from sigdesk.outbound import services as outbound
from tests import factories
from tests.commanding import audit, events
from tests.inbox.helpers import FIXTURES, customer_writes, deliver

IMPORT = Actor.system("cli")


def at(hour: int) -> datetime:
    return datetime(2026, 11, 20, hour, tzinfo=timezone.utc)


# --- field rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, column, stored",
    [
        ({"language": "PT_br"}, "language", "pt-BR"),
        ({"language": "zh-hant-tw"}, "language", "zh-Hant-TW"),
        ({"language": "es-419"}, "language", "es-419"),
        ({"country": " de "}, "country", "DE"),
        ({"email": "  Ada@Example.com "}, "email", "ada@example.com"),
        ({"name": "  "}, "display_name", None),
        ({"notes": "line one\n\tline two"}, "notes", "line one\n\tline two"),
        ({"phone": "+49 (170) 123-45-67"}, "wa_id", "491701234567"),
    ],
)
def test_fields_are_written_down_in_one_form(app, given, column, stored):
    with app.extensions["sigdesk"].database.session() as session:
        assert clean(session, given, None) == {column: stored}


@pytest.mark.parametrize(
    "given, field",
    [
        ({"language": "english"}, "language"),
        ({"country": "AC"}, "country"),
        ({"city": "Bonn\nBerlin"}, "city"),
        ({"company": "\ud800"}, "company"),
        ({"email": "a@b"}, "email"),
        ({"owner_id": True}, "owner_id"),
        ({"wa_id": "15550001"}, "wa_id"),
    ],
)
def test_field_rules_refuse_naming_the_field(app, given, field):
    with app.extensions["sigdesk"].database.session() as session, pytest.raises(UserError) as refused:
        clean(session, given, None)
    assert refused.value.field == field


def test_every_iso_country_is_accepted_and_only_those():
    assert len(COUNTRIES) == 250  # ISO 3166-1's 249 and Kosovo's XK, which Meta and phone plans use
    assert {"DE", "US", "BR", "AQ", "XK"} <= COUNTRIES and not {"AC", "TA", "EU", "UK"} & COUNTRIES


# --- commands ----------------------------------------------------------------------------------------


@pytest.mark.database
def test_a_contact_created_by_a_direct_call_leaves_the_same_trail_as_through_the_api(app, owner):
    with app.extensions["sigdesk"].database.session() as session:
        contact = commands.create_contact(session, IMPORT, "+1 202 555 0123", name="Ada", city="London")
        contact_id = contact.id
    [entry] = audit(app, "contact.created")
    assert (entry.target, entry.channel, entry.detail) == (f"contact {contact_id}", "cli", {"fields": ["city", "name"]})
    assert events(app, "contact.created") == [{"contact_id": contact_id}]


@pytest.mark.database
def test_a_refused_command_stores_nothing_and_announces_nothing(app, owner):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        factories.contact(session, "12025550123")
    with pytest.raises(Conflict), database.session() as session:
        commands.create_contact(session, IMPORT, "(202) 555-0123 ", email="x@example.com")
    with pytest.raises(UserError), database.session() as session:
        commands.create_contact(session, IMPORT, "+49 170 1234567", email="nope")
    with database.session() as session:
        assert session.scalar(select(sa.func.count()).select_from(Contact)) == 1
    assert audit(app, "contact.created") == [] and events(app, "contact.created") == []


@pytest.mark.database
def test_deleting_a_contact_with_conversations_is_refused(app, owner):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        contact_id = factories.conversation(session).contact_id
    with pytest.raises(Refused), database.session() as session:
        commands.delete_contact(session, IMPORT, contact_id)
    with database.session() as session:
        assert session.get(Contact, contact_id) is not None


@pytest.mark.database
def test_anonymising_clears_what_the_business_wrote_about_the_customer(app, owner, tmp_path):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        contact = commands.create_contact(
            session, IMPORT, "+1 202 555 0123", email="ada@example.com", company="Engines", notes="Lives at 1 Main St"
        )
        contact_id = contact.id
    with database.session() as session:
        commands.anonymise(session, IMPORT, contact_id, tmp_path)
    with database.session() as session:
        contact = session.get(Contact, contact_id)
        assert [getattr(contact, column) for column in commands.ERASED_FIELDS] == [None] * 7
        assert contact.wa_id is None


# --- message times -----------------------------------------------------------------------------------


@pytest.mark.database
def test_the_webhook_keeps_first_and_last_inbound_times_whatever_order_messages_arrive_in(app):
    database = app.extensions["sigdesk"].database
    customer_writes(database, "15551230009", "second", at=at(12))
    customer_writes(database, "15551230009", "first, delivered late", at=at(9))
    customer_writes(database, "15551230009", "third", at=at(15))
    with database.session() as session:
        contact = session.scalar(select(Contact).where(Contact.wa_id == "15551230009"))
        assert (contact.first_inbound_at, contact.last_inbound_at) == (at(9), at(15))
        assert (contact.first_outbound_at, contact.last_outbound_at) == (None, None)


@pytest.mark.database
def test_a_message_sent_from_the_phone_app_counts_as_outbound(app):
    database = app.extensions["sigdesk"].database
    deliver(database, (FIXTURES / "message_echo_text.json").read_bytes())
    sent = datetime.fromtimestamp(1731702200, tz=timezone.utc)
    with database.session() as session:
        contact = session.scalar(select(Contact).where(Contact.wa_id == "15551230001"))
        assert (contact.first_outbound_at, contact.last_outbound_at) == (sent, sent)
        assert contact.first_inbound_at is None


@pytest.mark.database
def test_queuing_a_message_sets_the_outbound_times(app):
    database = app.extensions["sigdesk"].database
    now = utcnow().replace(microsecond=0)  # MariaDB keeps whole seconds
    with database.session() as session:
        conversation = factories.conversation(session, last_inbound_at=now - timedelta(minutes=5))
        outbound.queue(session, conversation, "text", {"body": "Your cake is ready"}, now=now - timedelta(minutes=1))
        outbound.queue(session, conversation, "text", {"body": "Come by at five"}, now=now)
        contact_id = conversation.contact_id
    with database.session() as session:
        contact = session.get(Contact, contact_id)
        assert (contact.first_outbound_at, contact.last_outbound_at) == (now - timedelta(minutes=1), now)


@pytest.mark.database
def test_a_new_whatsapp_profile_name_never_overwrites_the_name_the_business_gave(app, owner):
    database = app.extensions["sigdesk"].database
    customer_writes(database, "15551230008", "hi", name="rosa")
    with database.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.wa_id == "15551230008"))
        commands.update_contact(session, IMPORT, contact_id, {"name": "Rosa Bakery"})
    customer_writes(database, "15551230008", "hello again", name="Rosa ✨")
    with database.session() as session:
        contact = session.get(Contact, contact_id)
        assert (contact.display_name, contact.profile_name, contact.name) == ("Rosa Bakery", "Rosa ✨", "Rosa Bakery")


# --- the migration -----------------------------------------------------------------------------------


def test_the_upgrade_keeps_the_contacts_search_triggers_and_fills_known_times(tmp_path, config):
    """0012 adds its columns in place: a copied table would lose the full-text triggers on SQLite."""
    from alembic import command

    from sigdesk.db import Database, alembic_config

    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrations = alembic_config(database, config.migrations_dir)
    command.upgrade(migrations, "0011")
    with database.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO contacts (id, wa_id, opted_out_marketing, created_at) VALUES (1, '4915', 0, '2026-01-01')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO conversations (id, contact_id, status, unread_count, created_at) "
                "VALUES (1, 1, 'open', 0, '2026-01-01')"
            )
        )
        for direction, when in [("in", "03"), ("in", "05"), ("out", "04"), ("out", "06")]:
            connection.execute(
                sa.text(
                    "INSERT INTO messages (conversation_id, contact_id, direction, type, timestamp, created_at, "
                    "forwarded, frequently_forwarded, attempts) "
                    f"VALUES (1, 1, '{direction}', 'text', '2026-01-{when} 00:00:00.000000', '2026-01-01', 0, 0, 0)"
                )
            )
    command.upgrade(migrations, "0012")
    with database.engine.connect() as connection:
        triggers = connection.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'contacts'")
        ).scalars()
        assert set(triggers) == {"contacts_fts_insert", "contacts_fts_delete", "contacts_fts_update"}
        row = connection.execute(
            sa.text("SELECT first_inbound_at, first_outbound_at, last_outbound_at, updated_at FROM contacts")
        ).one()
    assert [value[:10] for value in row] == ["2026-01-03", "2026-01-04", "2026-01-06", "2026-01-01"]
    command.downgrade(migrations, "0011")
    database.engine.dispose()
