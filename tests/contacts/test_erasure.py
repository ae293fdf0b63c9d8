"""Anonymising a contact leaves none of their words behind: not in the search index, not in the team's notes
about them, not in the webhook deliveries that named them, and (SQLite) not in the database file's bytes,
which is what a later backup copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.contacts.commands import REDACTED_NOTE, anonymise
from sigdesk.models import AccountEvent, Contact, Conversation, Note, OutboxCursor, User, WebhookDelivery
from sigdesk.search import fts
from sigdesk.search import services as search
from tests import factories
from tests.inbox.helpers import FIXTURES, deliver, deliver_fixtures

# Words nobody else wrote: if any of them is left in the file, it is left from this contact.
SAID = "Quetzalwort"
FILED = "Brimblecombe"
CARD = "Zanzibarova"
NOTED = "Oxlipthorne"
CJK = "龘靐齉麤"
ADA = "15551230001"  # the customer of the webhook fixtures
FIXTURE_WORD = "shop open today"  # Meta's copy in the webhook delivery, and the stored text


def seed_words(app) -> int:
    """A customer who said, sent and was noted all the words above; returns their contact id."""
    state = app.extensions["sigdesk"]
    deliver_fixtures(state.database, "message_text")  # Ada, by webhook: the delivery keeps Meta's bytes
    preference = (FIXTURES / "user_preferences_stop.json").read_bytes().replace(b"15551230002", ADA.encode())
    deliver(state.database, preference.replace(b"marketing_messages", b"another_category"))  # kept as an account event
    with state.database.session() as session:
        factories.user(session, "owner", "owner@example.com", "Owner")
        ada = session.scalar(select(Contact).where(Contact.wa_id == ADA))
        conversation = session.scalar(select(Conversation).where(Conversation.contact_id == ada.id))
        factories.message(session, conversation, text=f"my code word is {SAID} " + "and more words " * 400)
        factories.message(session, conversation, text=f"请把{CJK}寄给我")
        factories.message(session, conversation, type="document", filename=f"{FILED}-contract.pdf")
        cards = {"contacts": {"cards": [{"name": {"formatted_name": f"Aunt {CARD}"}}]}}
        factories.message(session, conversation, type="contacts", details=json.dumps(cards))
        factories.note(session, conversation, f"She told me the code word {NOTED}, call back on Monday")
        factories.note(session, conversation, "Assigned to Owner", kind="activity")
        other = factories.conversation(session, factories.contact(session, "4930000000009", "Someone Else"))
        factories.message(session, other, text="an ordinary question about opening hours")
        factories.note(session, other, f"Her sister (+{ADA}) asked the same")
        factories.note(session, other, "Nothing about anyone")
        contact_id = ada.id
    state.worker.run_once()  # the outbox's consumers start reading here
    return contact_id


def owner_finds(app, query: str) -> dict:
    with app.extensions["sigdesk"].database.session(write=False) as session:
        owner = session.scalar(select(User).where(User.role == "owner"))
        return search.search(session, owner, query)


def file_bytes(app) -> bytes:
    path = Path(app.extensions["sigdesk"].database.engine.url.database)
    return b"".join(part.read_bytes() for part in (path, Path(f"{path}-wal")) if part.exists())


def checkpoint(app) -> None:
    with app.extensions["sigdesk"].database.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def erase(app, contact_id: int) -> None:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        anonymise(session, Actor.system("cli"), contact_id, state.config.data_dir)
    state.worker.run_once()  # search merges its index after the erasure (an outbox consumer)


def test_no_word_of_theirs_is_left_in_the_sqlite_file_after_anonymising(app):
    contact_id = seed_words(app)
    assert len(owner_finds(app, SAID)["messages"]) == 1
    checkpoint(app)
    before = file_bytes(app)
    words = [word.encode() for word in (SAID, FILED, CARD, NOTED, CJK, FIXTURE_WORD)]
    assert all(word in before for word in words)

    erase(app, contact_id)

    after = file_bytes(app)
    assert [word.decode() for word in words if word in after] == []
    assert ADA.encode() not in after
    with app.extensions["sigdesk"].database.engine.begin() as connection:
        assert fts.integrity_ok(connection)
    assert owner_finds(app, "opening hours")["messages"]  # the others' words stay searchable


@pytest.mark.database
def test_anonymising_purges_the_index_their_notes_and_the_deliveries_that_name_them(app):
    contact_id = seed_words(app)
    state = app.extensions["sigdesk"]
    deliver(state.database, factories.text_message("4930000000009", "unrelated"))
    with state.database.session() as session:
        assert [payload for payload in session.scalars(select(AccountEvent.payload)) if ADA in payload]

    erase(app, contact_id)

    for query in (SAID, FILED, CARD, CJK, "shop", "Aunt", ADA):
        found = owner_finds(app, query)
        assert found["messages"] == [] and found["contacts"] == [], query
    with state.database.session() as session:
        bodies = dict(session.execute(select(Note.body, Note.kind).where(Note.body != "Nothing about anyone")).all())
        assert bodies == {REDACTED_NOTE: "note", "Assigned to Owner": "activity"}
        assert session.scalar(select(Note.id).where(Note.body == "Nothing about anyone"))
        raws = session.scalars(select(WebhookDelivery.raw)).all()
        assert len(raws) == 1 and ADA.encode() not in raws[0]
        assert [payload for payload in session.scalars(select(AccountEvent.payload)) if ADA in payload] == []
        cursor = session.scalar(select(OutboxCursor.last_id).where(OutboxCursor.consumer == "search erasure"))
        assert cursor and cursor > 0  # the compaction ran (a failed run does not advance)
    fts.compact(state.database.engine)  # and runs again without harm
