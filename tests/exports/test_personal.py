"""One contact's data: exported whole, or anonymised with nothing of theirs left behind."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.exports.personal import anonymise_contact, export_contact, remove_files
from sigdesk.exports.services import ExportError
from sigdesk.models import AuditEvent, Contact, Conversation, Message, Reaction
from tests.backup.seed import MESSAGE_TYPES, media_files, seed


@pytest.fixture
def seeded(app):
    seed(app)
    return app


def first_contact(session) -> Contact:
    return session.scalars(select(Contact).order_by(Contact.id)).first()


def test_contact_export_holds_everything_about_them_as_json_csv_and_media(seeded, tmp_path):
    state = seeded.extensions["sigdesk"]
    out = tmp_path / "contact.zip"
    with state.database.session() as session:
        contact = first_contact(session)
        counts = export_contact(session, contact.id, out, state.config.data_dir)
        wa_id = contact.wa_id
    assert counts["messages"] == len(MESSAGE_TYPES) and counts["conversations"] == 1 and counts["reactions"] == 1
    with zipfile.ZipFile(out) as archive:
        data = json.loads(archive.read("contact.json"))
        assert data["contact"][0]["wa_id"] == wa_id
        assert {m["wamid"] for m in data["messages"]} == {f"wamid.0.{i}" for i in range(len(MESSAGE_TYPES))}
        rows = list(csv.DictReader(io.StringIO(archive.read("messages.csv").decode("utf-8-sig"))))
        assert [r["wamid"] for r in rows] == [m["wamid"] for m in data["messages"]]
        assert len([n for n in archive.namelist() if n.startswith("media/")]) == 5


def test_anonymising_clears_identity_content_and_media_and_is_audited(seeded, tmp_path):
    state = seeded.extensions["sigdesk"]
    data_dir = state.config.data_dir
    with state.database.session() as session:
        contact = first_contact(session)
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
        doomed = anonymise_contact(session, Actor.system("cli"), contact_id, data_dir)
    assert remove_files(doomed) == 4
    after = media_files(data_dir)
    assert len(after) == len(before) - 4
    with state.database.session() as session:
        contact = session.get(Contact, contact_id)
        assert (contact.wa_id, contact.profile_name, contact.user_id) == (None, None, None)
        messages = session.scalars(select(Message).where(Message.contact_id == contact_id)).all()
        assert len(messages) == len(MESSAGE_TYPES)
        assert all(m.text is None and m.raw is None and m.details is None and m.storage_key is None for m in messages)
        assert session.scalars(select(Reaction).where(Reaction.contact_id == contact_id)).one().emoji is None
        assert session.scalars(select(Conversation).where(Conversation.contact_id == contact_id)).one()
        assert (data_dir / shared.storage_key).is_file()
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.anonymised")).one()
        assert event.target == f"contact {contact_id}" and wa_id not in (event.detail or "")


def test_unknown_contact_is_a_clear_error(seeded, tmp_path):
    with seeded.extensions["sigdesk"].database.session() as session:
        with pytest.raises(ExportError, match="no contact 999"):
            export_contact(session, 999, tmp_path / "x.zip")
        with pytest.raises(ExportError, match="no contact 999"):
            anonymise_contact(session, Actor.system("cli"), 999, tmp_path)
    assert not (tmp_path / "x.zip").exists()
