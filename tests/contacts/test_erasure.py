"""Anonymising a contact leaves none of their words behind: not in the search index, not in the team's notes
about them, not in the webhook deliveries that named them, and (SQLite) not in the database file's bytes,
which is what a later backup copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.contacts.commands import REDACTED_NOTE, anonymise, remove_files
from sigdesk.inbound import services as inbound
from sigdesk.models import (
    AccountEvent,
    Contact,
    Conversation,
    DeliveryState,
    Message,
    Note,
    OutboxCursor,
    UploadedMedia,
    User,
    WebhookDelivery,
)
from sigdesk.search import fts
from sigdesk.search import services as search
from sigdesk.whatsapp.media import store_media
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


OTHER = "4930000000077"


def pending_delivery(database) -> int:
    """A delivery stored but not processed yet (the webhook's careful path, the relay before it applies):
    Ada writes, changes her marketing choice and gets a status, in one body with another customer."""
    ada_writes = factories.text_message(ADA, f"I am back: {SAID}", name="Ada Again", meta=factories.metadata())
    value = ada_writes["entry"][0]["changes"][0]["value"]
    other = factories.text_message(OTHER, "is my parcel on its way", name="Other Person")["entry"][0]["changes"][0]
    value["contacts"] += other["value"]["contacts"]
    value["messages"] += other["value"]["messages"]
    value["statuses"] = [{"id": "wamid.out.1", "status": "read", "timestamp": "1700000000", "recipient_id": ADA}]
    lone = factories.text_message(None, "written by whoever the lone contacts entry names")
    lone["entry"][0]["changes"][0]["value"]["contacts"] = [factories.profile(ADA, "Ada Lone")]
    ada_writes["entry"][0]["changes"].append(lone["entry"][0]["changes"][0])
    raw = json.dumps(ada_writes).encode()
    with database.session() as session:
        return inbound.store_delivery(session, raw, "sha256=test")


@pytest.mark.database
def test_a_delivery_not_yet_processed_cannot_bring_an_anonymised_contact_back(app):
    contact_id = seed_words(app)
    state = app.extensions["sigdesk"]
    delivery_id = pending_delivery(state.database)

    erase(app, contact_id)
    with state.database.session() as session:  # what the relay and the webhook do with a stored delivery
        assert inbound.apply_stored(session, delivery_id) == DeliveryState.PROCESSED.value
    state.worker.run_once()

    with state.database.session() as session:
        assert session.scalar(select(Contact.id).where(Contact.wa_id == ADA)) is None
        names = set(session.scalars(select(Contact.profile_name))) | set(session.scalars(select(Contact.display_name)))
        assert "Ada Again" not in names and "Ada Lone" not in names
        assert session.scalar(select(Message.id).where(Message.text.contains(SAID))) is None
        assert session.scalar(select(Message.id).where(Message.text.contains("lone contacts entry"))) is None
        # the other customer in the same delivery still arrives
        other = session.scalar(select(Contact).where(Contact.wa_id == OTHER))
        assert other is not None and other.profile_name == "Other Person"
        assert session.scalar(select(Message.text).where(Message.contact_id == other.id)) == "is my parcel on its way"
        raw = session.scalar(select(WebhookDelivery.raw).where(WebhookDelivery.id == delivery_id))
        assert ADA.encode() not in raw and SAID.encode() not in raw
        assert session.scalar(select(Contact.opted_out_marketing).where(Contact.id == contact_id))


@pytest.mark.database
def test_anonymising_forgets_the_files_uploaded_for_their_messages(app):
    contact_id = seed_words(app)
    state = app.extensions["sigdesk"]
    data_dir = state.config.data_dir
    key = store_media(data_dir, b"%PDF- their signed contract")
    kept = store_media(data_dir, b"%PDF- the price list everyone gets")
    with state.database.session() as session:
        conversation = session.scalar(select(Conversation).where(Conversation.contact_id == contact_id))
        factories.message(session, conversation, "out", "document", storage_key=key, filename=f"{FILED}.pdf")
        for media_id, storage_key, name in (("m-theirs", key, f"{FILED}-signed.pdf"), ("m-all", kept, "prices.pdf")):
            session.add(
                UploadedMedia(
                    media_id=media_id, storage_key=storage_key, mime_type="application/pdf", filename=name, file_size=9
                )
            )

    with state.database.session() as session:
        doomed = anonymise(session, Actor.system("cli"), contact_id, data_dir)
    assert remove_files(doomed) == 1

    with state.database.session() as session:
        assert session.execute(select(UploadedMedia.media_id, UploadedMedia.filename)).all() == [
            ("m-all", "prices.pdf")
        ]
    assert not (data_dir / key).exists() and (data_dir / kept).exists()
