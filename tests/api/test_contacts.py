"""The contacts API: a record per customer, created with a phone in any common format, found by name,
number, email or company, edited field by field, deleted by admins; bad input is a 4xx naming the field
and stores nothing."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from sigdesk.models import Contact
from sigdesk.settings import services as settings
from tests import factories
from tests.commanding import audit, events

ADA = "+1 (202) 555-0123"
ADA_WA_ID = "12025550123"


@pytest.fixture
def api(app):
    """A client with no browser session: the token alone signs it in."""
    return app.test_client()


def token_for(app, role: str) -> dict[str, str]:
    with app.extensions["sigdesk"].database.session() as session:
        token = factories.api_token(session, factories.user(session, role))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def agent(app, owner) -> dict[str, str]:
    return token_for(app, "agent")


@pytest.fixture
def admin(app, owner) -> dict[str, str]:
    return token_for(app, "admin")


def contact_count(app) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(func.count()).select_from(Contact))


def set_country(app, code: str) -> None:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "contacts.default_country", code)


# --- creating ----------------------------------------------------------------------------------------


@pytest.mark.database
def test_a_contact_is_created_with_its_phone_stored_as_wa_id_digits_and_read_back_the_same(app, api, agent):
    response = api.post(
        "/api/v1/contacts",
        json={
            "phone": ADA,
            "name": "Ada Lovelace",
            "email": "Ada@Example.COM",
            "company": "Analytical Engines",
            "city": "London",
            "country": "gb",
            "language": "en_gb",
            "notes": "Prefers mornings.\nAsk about the engine.",
        },
        headers=agent,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert created["phone"] == ADA_WA_ID
    assert (created["name"], created["profile_name"], created["email"]) == ("Ada Lovelace", None, "ada@example.com")
    assert (created["country"], created["language"], created["owner_id"]) == ("GB", "en-GB", None)
    assert created["notes"] == "Prefers mornings.\nAsk about the engine."
    assert created["created_at"] == created["updated_at"]
    for time in ("first_inbound_at", "last_inbound_at", "first_outbound_at", "last_outbound_at"):
        assert created[time] is None
    assert api.get(f"/api/v1/contacts/{created['id']}", headers=agent).get_json() == created
    assert [entry.detail["fields"] for entry in audit(app, "contact.created")] == [
        ["city", "company", "country", "email", "language", "name", "notes"]
    ]
    assert events(app, "contact.created") == [{"contact_id": created["id"]}]


@pytest.mark.database
def test_a_number_typed_without_a_prefix_is_read_in_the_default_country(app, api, agent):
    set_country(app, "DE")
    response = api.post("/api/v1/contacts", json={"phone": "0170 1234567"}, headers=agent)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["phone"] == "491701234567"


@pytest.mark.database
def test_without_a_default_country_a_national_number_is_refused_saying_how_to_write_it(app, api, agent):
    set_country(app, "")
    response = api.post("/api/v1/contacts", json={"phone": "0170 1234567"}, headers=agent)
    assert response.status_code == 400
    assert response.get_json()["field"] == "phone"
    assert "contacts.default_country" in response.get_json()["error"]
    assert contact_count(app) == 0


@pytest.mark.database
def test_a_number_already_on_record_in_another_format_is_409_naming_that_contact(app, api, agent):
    with app.extensions["sigdesk"].database.session() as session:
        existing = factories.contact(session, "491701234567", name="Bea").id
    response = api.post("/api/v1/contacts", json={"phone": "0049 170 123 4567", "name": "Again"}, headers=agent)
    assert response.status_code == 409
    assert response.get_json()["field"] == "phone"
    assert f"Contact {existing}" in response.get_json()["error"]
    assert contact_count(app) == 1


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.database
@pytest.mark.parametrize(
    "body, field",
    [
        ({"phone": "+1 202 555"}, "phone"),
        ({"phone": "not a number"}, "phone"),
        ({"phone": ""}, "phone"),
        ({"phone": 12025550123}, "phone"),
        ({"phone": "+" + "1" * 70}, "phone"),
        ({"name": "Ada"}, "phone"),
        ({"phone": ADA, "email": "ada@"}, "email"),
        ({"phone": ADA, "email": "ada lovelace@example.com"}, "email"),
        ({"phone": ADA, "owner_id": 999999}, "owner_id"),
        ({"phone": ADA, "owner_id": "1"}, "owner_id"),
        ({"phone": ADA, "name": "x" * 256}, "name"),
        ({"phone": ADA, "notes": "x" * 10_001}, "notes"),
        ({"phone": ADA, "company": "x" * 256}, "company"),
        ({"phone": ADA, "country": "XX"}, "country"),
        ({"phone": ADA, "country": "Germany"}, "country"),
        ({"phone": ADA, "language": "English!"}, "language"),
        ({"phone": ADA, "name": "Ada\x00"}, "name"),
        ({"phone": ADA, "profile_name": "Not yours"}, "profile_name"),
        ({"phone": ADA, "shoe_size": 44}, "shoe_size"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(app, api, agent, body, field):
    response = api.post("/api/v1/contacts", json=body, headers=agent)
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert response.get_json()["field"] == field
    assert contact_count(app) == 0


@pytest.mark.database
def test_a_deactivated_owner_is_refused(app, api, agent):
    from sigdesk.models import User

    with app.extensions["sigdesk"].database.session() as session:
        gone = factories.user(session)
        gone.is_active = False
        gone_id = gone.id
    response = api.post("/api/v1/contacts", json={"phone": ADA, "owner_id": gone_id}, headers=agent)
    assert (response.status_code, response.get_json()["field"]) == (400, "owner_id")
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(User, gone_id) is not None


# --- editing -----------------------------------------------------------------------------------------


@pytest.mark.database
def test_an_edit_changes_only_the_fields_given_and_never_the_whatsapp_profile_name(app, api, agent):
    with app.extensions["sigdesk"].database.session() as session:
        contact = factories.contact(session, ADA_WA_ID, name="ada from whatsapp", company="Engines")
        owner_id = factories.user(session).id
        contact_id, created = contact.id, contact.created_at
    response = api.patch(
        f"/api/v1/contacts/{contact_id}", json={"name": "Ada Lovelace", "owner_id": owner_id}, headers=agent
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    edited = response.get_json()
    assert (edited["name"], edited["profile_name"], edited["company"]) == (
        "Ada Lovelace",
        "ada from whatsapp",
        "Engines",
    )
    assert edited["owner_id"] == owner_id
    assert datetime.fromisoformat(edited["updated_at"]) >= created.replace(microsecond=0)  # MariaDB: whole seconds
    cleared = api.patch(f"/api/v1/contacts/{contact_id}", json={"name": None, "company": ""}, headers=agent)
    assert (cleared.get_json()["name"], cleared.get_json()["company"]) == ("ada from whatsapp", None)
    assert [entry.detail["fields"] for entry in audit(app, "contact.updated")] == [
        ["name", "owner_id"],
        ["company", "name"],
    ]
    assert [event["fields"] for event in events(app, "contact.changed")] == [["name", "owner_id"], ["company", "name"]]


@pytest.mark.database
def test_saving_unchanged_values_leaves_no_trail(app, api, agent):
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session, ADA_WA_ID, email="ada@example.com").id
    response = api.patch(
        f"/api/v1/contacts/{contact_id}", json={"email": "ADA@example.com", "phone": ADA}, headers=agent
    )
    assert response.status_code == 200
    assert audit(app, "contact.updated") == [] and events(app, "contact.changed") == []


@pytest.mark.database
def test_an_edit_to_a_number_another_contact_has_is_409_and_changes_nothing(app, api, agent):
    with app.extensions["sigdesk"].database.session() as session:
        taken = factories.contact(session, ADA_WA_ID).id
        contact_id = factories.contact(session, "491701234567").id
    response = api.patch(f"/api/v1/contacts/{contact_id}", json={"phone": ADA, "city": "Bonn"}, headers=agent)
    assert response.status_code == 409
    assert f"Contact {taken}" in response.get_json()["error"]
    after = api.get(f"/api/v1/contacts/{contact_id}", headers=agent).get_json()
    assert (after["phone"], after["city"]) == ("491701234567", None)


@pytest.mark.database
@pytest.mark.parametrize(
    "body, field",
    [({"phone": None}, "phone"), ({"email": "nope"}, "email"), ({"id": 5}, "id"), ({"language": 5}, "language")],
)
def test_bad_edits_are_refused_naming_the_field(app, api, agent, body, field):
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session, ADA_WA_ID).id
    response = api.patch(f"/api/v1/contacts/{contact_id}", json=body, headers=agent)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == field


def test_a_missing_contact_is_404(app, api, agent):
    assert api.get(f"/api/v1/contacts/{2**53 - 1}", headers=agent).status_code == 404
    assert api.patch(f"/api/v1/contacts/{2**53 - 1}", json={"city": "x"}, headers=agent).status_code == 404


# --- finding -----------------------------------------------------------------------------------------


@pytest.mark.database
@pytest.mark.parametrize(
    "q", ["lovelace", "ADA", "+1 202-555-0123", "(202) 555 0123", "5550123", "engines", "ada@example", "12025550123"]
)
def test_contacts_are_found_by_name_phone_in_any_format_email_or_company(app, api, agent, q):
    with app.extensions["sigdesk"].database.session() as session:
        ada = factories.contact(
            session, ADA_WA_ID, display_name="Ada Lovelace", email="ada@example.com", company="Analytical Engines"
        ).id
        factories.contact(session, "491701234567", name="Bea", email="bea@example.org", company="Looms")
    set_country(app, "US")
    found = api.get("/api/v1/contacts", query_string={"q": q}, headers=agent).get_json()
    assert [item["id"] for item in found["items"]] == [ada]


@pytest.mark.database
def test_the_list_pages_newest_first_without_repeating_or_skipping(app, api, agent):
    with app.extensions["sigdesk"].database.session() as session:
        ids = [factories.contact(session, name=f"Customer {n}").id for n in range(7)]
    seen, cursor = [], ""
    while True:
        page = api.get("/api/v1/contacts", query_string={"limit": 3, "cursor": cursor}, headers=agent).get_json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == sorted(ids, reverse=True)


def test_a_cursor_sigdesk_did_not_give_out_is_400(app, api, agent):
    response = api.get("/api/v1/contacts", query_string={"cursor": "nonsense!"}, headers=agent)
    assert (response.status_code, response.get_json()["field"]) == (400, "cursor")


# --- deleting ----------------------------------------------------------------------------------------


@pytest.mark.database
def test_agents_may_not_delete_and_admins_delete_a_contact_without_conversations(app, api, agent, admin):
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session, ADA_WA_ID).id
    assert api.delete(f"/api/v1/contacts/{contact_id}", headers=agent).status_code == 403
    assert contact_count(app) == 1
    assert api.delete(f"/api/v1/contacts/{contact_id}", headers=admin).status_code == 204
    assert contact_count(app) == 0
    assert [entry.target for entry in audit(app, "contact.deleted")] == [f"contact {contact_id}"]
    assert events(app, "contact.deleted") == [{"contact_id": contact_id}]
    assert api.delete(f"/api/v1/contacts/{contact_id}", headers=admin).status_code == 404


@pytest.mark.database
def test_a_contact_with_conversations_is_not_deleted_but_pointed_to_anonymising(app, api, admin):
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.conversation(session).contact_id
    response = api.delete(f"/api/v1/contacts/{contact_id}", headers=admin)
    assert (response.status_code, response.get_json()["field"]) == (422, "contact_id")
    assert "anonymise" in response.get_json()["error"]
    assert contact_count(app) == 1


def test_the_contacts_operations_are_in_the_openapi_document(api):
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    assert set(paths["/contacts"]) == {"get", "post"}
    assert set(paths["/contacts/{contact_id}"]) == {"get", "patch", "delete"}
