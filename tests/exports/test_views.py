"""Admin → Exports over real requests: downloads parse back, contact data and anonymising."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from sigdesk.models import AuditEvent, Contact
from tests import factories
from tests.backup.seed import seed
from tests.conftest import csrf_from


def token(auth) -> str:
    return csrf_from(auth.client.get("/admin/exports/").get_data(as_text=True))


def test_admins_download_csv_and_zip_exports_that_parse_back(app, auth, owner):
    seed(app)
    response = auth.client.post(
        "/admin/exports/download", data={"csrf_token": token(auth), "what": "contacts", "format": "csv", "bom": "1"}
    )
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [row["wa_id"] for row in rows] == ["447700900000", "447700900001", "447700900002"]
    everything = auth.client.post(
        "/admin/exports/download", data={"csrf_token": token(auth), "what": "all", "format": "json"}
    )
    with zipfile.ZipFile(io.BytesIO(everything.data)) as archive:
        assert len(archive.read("messages.jsonl").decode().splitlines()) == 42
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get("/admin/exports/").status_code == 403


def test_bad_choices_are_a_clear_400(auth, owner):
    response = auth.client.post(
        "/admin/exports/download", data={"csrf_token": token(auth), "what": "invoices", "format": "csv"}
    )
    assert response.status_code == 400 and "Unknown export" in response.get_data(as_text=True)


def test_contact_download_and_anonymise(app, auth, owner):
    seed(app)
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = session.scalars(select(Contact.id).order_by(Contact.id)).first()
    zipped = auth.client.post("/admin/exports/contact", data={"csrf_token": token(auth), "contact_id": str(contact_id)})
    with zipfile.ZipFile(io.BytesIO(zipped.data)) as archive:
        assert json.loads(archive.read("contact.json"))["contact"][0]["id"] == contact_id
    unconfirmed = auth.client.post(
        "/admin/exports/contact/anonymise", data={"csrf_token": token(auth), "contact_id": str(contact_id)}
    )
    assert unconfirmed.status_code == 400
    done = auth.client.post(
        "/admin/exports/contact/anonymise",
        data={"csrf_token": token(auth), "contact_id": str(contact_id), "confirm": "ANONYMISE"},
        follow_redirects=True,
    )
    assert "anonymised; 5 media files deleted" in done.get_data(as_text=True)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Contact, contact_id).wa_id is None
        assert (
            session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.anonymised")).one().actor_email
            == owner.email
        )
    missing = auth.client.post("/admin/exports/contact", data={"csrf_token": token(auth), "contact_id": "999"})
    assert missing.status_code == 404


def people(app, count: int = 25) -> list[int]:
    """Contacts named Rosa 0..count-1, Rosa 0 having written last; their ids in that order."""
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with app.extensions["sigdesk"].database.session() as session:
        made = [
            factories.contact(session, f"4477009{n:05d}", name=f"Rosa {n}", last_inbound_at=start - timedelta(hours=n))
            for n in range(count)
        ]
        factories.contact(session, "15550001111", name="Bob", display_name="Bob's Bikes")
        return [contact.id for contact in made]


@pytest.mark.database
def test_the_contact_picker_finds_people_by_name_or_number_a_page_at_a_time(app, auth, owner):
    rosas = people(app)
    seen, cursor = [], ""
    while True:
        answer = auth.client.get("/admin/exports/contacts", query_string={"q": "rosa", "limit": 10, "cursor": cursor})
        assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
        body = answer.get_json()
        seen += [item["id"] for item in body["items"]]
        assert len(body["items"]) <= 10
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert seen == rosas  # whoever wrote last first, each once
    by_number = auth.client.get("/admin/exports/contacts", query_string={"q": "+44 7700 900 003"}).get_json()
    assert [item["name"] for item in by_number["items"]] == ["Rosa 3"]
    by_name = auth.client.get("/admin/exports/contacts", query_string={"q": "bikes"}).get_json()
    assert [(item["name"], item["wa_id"]) for item in by_name["items"]] == [("Bob's Bikes", "15550001111")]
    assert auth.client.get("/admin/exports/contacts", query_string={"q": "100%"}).get_json()["items"] == []
    bad = auth.client.get(
        "/admin/exports/contacts", query_string={"cursor": "not-a-cursor"}, headers={"Accept": "application/json"}
    )
    assert bad.status_code == 400 and bad.get_json()["field"] == "cursor"
    for query, field in (({"limit": 0}, "limit"), ({"limit": 51}, "limit"), ({"q": "x" * 101}, "q")):
        refused = auth.client.get("/admin/exports/contacts", query_string=query, headers={"Accept": "application/json"})
        assert (refused.status_code, refused.get_json()["field"]) == (400, field)
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get("/admin/exports/contacts", query_string={"q": "rosa"}).status_code == 403


def test_the_picker_is_a_declared_page_call(auth, owner):
    calls = auth.client.get("/inbox/openapi.json").get_json()
    operation = calls["paths"]["/admin/exports/contacts"]["get"]
    assert operation["operationId"] == "exportsContacts"
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"q", "cursor", "limit"}


def test_the_page_offers_a_contact_search_instead_of_an_id(auth, owner):
    page = auth.client.get("/admin/exports/").get_data(as_text=True)
    assert 'name="contact_query"' in page and 'data-search-url="/admin/exports/contacts"' in page
    assert "Contact ID" not in page and 'inputmode="numeric"' not in page


def test_without_the_pages_script_find_lists_the_matches_to_choose_from(app, auth, owner):
    rosas = people(app, 3)
    page = auth.client.post(
        "/admin/exports/contact", data={"csrf_token": token(auth), "contact_query": "Rosa", "find": "1"}
    )
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'value="Rosa"' in text
    assert [f'name="contact_id" value="{rosa}"' in text for rosa in rosas] == [True] * 3


@pytest.mark.database
def test_refused_contact_forms_come_back_with_what_was_typed(app, auth, owner):
    rosas = people(app, 3)
    unpicked = auth.client.post("/admin/exports/contact", data={"csrf_token": token(auth), "contact_query": "Rosa 1"})
    text = unpicked.get_data(as_text=True)
    assert unpicked.status_code == 400 and "Pick the contact" in text
    assert 'value="Rosa 1"' in text and f'value="{rosas[1]}"' in text
    unconfirmed = auth.client.post(
        "/admin/exports/contact/anonymise",
        data={"csrf_token": token(auth), "contact_query": "Rosa", "contact_id": str(rosas[2]), "confirm": "anonymize"},
    )
    text = unconfirmed.get_data(as_text=True)
    assert unconfirmed.status_code == 400 and "Type ANONYMISE" in text
    assert 'value="Rosa"' in text and 'value="anonymize"' in text
    assert re.search(rf'value="{rosas[2]}" required\s+checked', text)
    refused = auth.client.post(
        "/admin/exports/download", data={"csrf_token": token(auth), "what": "messages", "format": "xml", "bom": "1"}
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Unknown format" in text
    assert re.search(r'<option value="messages"\s+selected', text)
    assert re.search(r'name="bom" value="1"\s+checked', text)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Contact, rosas[2]).wa_id is not None
