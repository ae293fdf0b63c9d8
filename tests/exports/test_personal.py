"""One contact's data exported whole (anonymising is tests/contacts/test_commands.py)."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from sqlalchemy import select

from sigdesk.exports.personal import export_contact
from sigdesk.exports.services import ExportError
from sigdesk.models import Contact
from tests.backup.seed import MESSAGE_TYPES, seed


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


def test_unknown_contact_is_a_clear_error(seeded, tmp_path):
    with seeded.extensions["sigdesk"].database.session() as session:
        with pytest.raises(ExportError, match="no contact 999"):
            export_contact(session, 999, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
