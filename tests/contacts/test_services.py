"""Which name a contact shows, and the one way the API, the exports and search show a contact."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from sigdesk.auth import services as accounts
from sigdesk.contacts.services import FIELDS, ContactData, contact_name, find_contact, get_contact, name_of
from sigdesk.errors import NotFound
from sigdesk.exports.services import export
from sigdesk.models import Contact
from sigdesk.search import services as search
from tests.inbox.helpers import customer_writes

RULE = [
    # (display_name, profile_name, wa_id, user_id) -> shown
    (("Rosa (bakery)", "Rosa", "15550001111", "US.1"), "Rosa (bakery)"),
    ((None, "Rosa", "15550001111", "US.1"), "Rosa"),
    (("", "Rosa", "15550001111", None), "Rosa"),
    ((None, None, "15550001111", "US.1"), "15550001111"),
    ((None, None, None, "US.1"), "US.1"),
    ((None, None, None, None), "Contact 7"),
]


@pytest.mark.parametrize(("fields", "shown"), RULE)
def test_a_contact_shows_the_name_the_business_gave_then_their_own_then_how_meta_knows_them(fields, shown):
    display_name, profile_name, wa_id, user_id = fields
    assert contact_name(7, display_name, profile_name, wa_id, user_id) == shown
    row = Contact(id=7, display_name=display_name, profile_name=profile_name, wa_id=wa_id, user_id=user_id)
    assert name_of(row) == shown
    assert row.name == shown, "the model's name (for templates) must follow the contacts rule"


def test_lookups_find_a_contact_by_number_or_user_id_and_name_a_missing_one(app):
    database = app.extensions["sigdesk"].database
    customer_writes(database, "15550002222", name="Rosa")
    with database.session() as session:
        rosa = find_contact(session, wa_id="15550002222")
        assert rosa is not None and name_of(rosa) == "Rosa"
        assert get_contact(session, rosa.id) is rosa
        assert find_contact(session, wa_id="15550009999") is None and find_contact(session) is None
        with pytest.raises(NotFound, match="no contact 999999") as refused:
            get_contact(session, 999999)
        assert refused.value.field == "contact_id"


def _plain(record: dict) -> dict:
    """Times as instants, whichever way the reader wrote them (the API's Z or isoformat's +00:00)."""
    return {
        key: datetime.fromisoformat(value) if isinstance(value, str) and key.endswith("_at") else value
        for key, value in record.items()
    }


@pytest.mark.database
def test_the_api_the_export_and_search_show_a_contact_with_the_same_fields(app, owner, tmp_path):
    database = app.extensions["sigdesk"].database
    customer_writes(database, "15550003333", name="Zoë Müller")
    with database.session() as session:
        zoe = session.scalar(select(Contact).where(Contact.wa_id == "15550003333"))
        zoe.display_name = "Zoë (wholesale)"
        user = accounts.find_user(session, owner.email)
        token = accounts.create_api_token(session, user, "contacts")

    listed = app.test_client().get("/api/v1/conversations", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.get_data(as_text=True)
    from_api = listed.get_json()["items"][0]["contact"]

    out = tmp_path / "contacts.jsonl"
    with database.session() as session:
        export(session, "contacts", "json", out)
        hits = search.search(session, accounts.find_user(session, owner.email), "wholesale")["contacts"]
        expected = ContactData.of(session.scalar(select(Contact).where(Contact.wa_id == "15550003333")))
    from_export = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    from_search = json.loads(ContactData(**hits[0]["contact"]).model_dump_json())

    assert list(from_api) == list(from_export) == list(from_search) == list(FIELDS)
    assert _plain(from_api) == _plain(from_export) == _plain(from_search) == _plain(expected.model_dump(mode="json"))
    assert from_api["name"] == "Zoë (wholesale)" and from_api["profile_name"] == "Zoë Müller"
    assert hits[0]["name"] == from_api["name"] and hits[0]["contact_id"] == from_api["id"]
