"""The consent API: POST and GET /api/v1/contacts/{id}/consent, declared in the OpenAPI document,
open to agents, and refusing bad input with a 400 that names the field."""

from __future__ import annotations

import httpx
import pytest

from sigdesk.auth import services as accounts
from tests import factories
from tests.commanding import audit, events


def a_contact(app) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return factories.contact(session).id


@pytest.mark.database
def test_recording_consent_answers_201_with_the_event_and_the_history_pages_newest_first(app, api, owner):
    contact_id = a_contact(app)
    path = f"/contacts/{contact_id}/consent"
    first = api.post(path, json={"status": "opted_in", "source": "form", "evidence": "Ticked 'send me offers'"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["contact_id"], body["status"], body["source"], body["evidence"]) == (
        contact_id,
        "opted_in",
        "form",
        "Ticked 'send me offers'",
    )
    assert body["channel"] == "api" and body["actor_id"] is not None
    second = api.post(path, json={"status": "opted_out", "source": "api"})
    assert second.status_code == 201 and second.json()["evidence"] is None

    page = api.get(path, params={"limit": 1}).json()
    assert [item["id"] for item in page["items"]] == [second.json()["id"]] and page["next_cursor"]
    rest = api.get(path, params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [item["id"] for item in rest["items"]] == [first.json()["id"]] and rest["next_cursor"] is None

    [entry] = audit(app, "contact.marketing_opt_out")
    assert (entry.actor, entry.channel, entry.detail["source"]) == (owner.email, "api", "api")
    assert "token_id" in entry.detail
    assert [e["status"] for e in events(app, "consent.recorded")] == ["opted_in", "opted_out"]


@pytest.mark.database
def test_bad_consent_input_is_refused_naming_the_field(app, api):
    contact_id = a_contact(app)
    path = f"/contacts/{contact_id}/consent"
    cases = [
        ({"status": "maybe", "source": "form"}, "status"),
        ({"source": "form"}, "status"),
        ({"status": "opted_in", "source": "meta_error_131050"}, "source"),
        ({"status": "opted_in"}, "source"),
        ({"status": "opted_in", "source": "form", "evidence": 12}, "evidence"),
        ({"status": "opted_in", "source": "form", "evidence": "x" * 1001}, "evidence"),
    ]
    for body, field in cases:
        response = api.post(path, json=body)
        assert (response.status_code, response.json()["field"]) == (400, field), body
    not_json = api.post(path, content=b"status=opted_in", headers={"Content-Type": "text/plain"})
    assert (not_json.status_code, not_json.json()["field"]) == (400, "body")
    for bad_id in ("abc", "0", "99999999999999999999"):
        response = api.post(f"/contacts/{bad_id}/consent", json={"status": "opted_in", "source": "form"})
        assert (response.status_code, response.json()["field"]) == (400, "contact_id")
    missing = api.post("/contacts/987654/consent", json={"status": "opted_in", "source": "form"})
    assert (missing.status_code, missing.json()["field"]) == (404, "contact_id")
    assert api.get("/contacts/987654/consent").status_code == 404
    bad_cursor = api.get(path, params={"cursor": "nonsense"})
    assert (bad_cursor.status_code, bad_cursor.json()["field"]) == (400, "cursor")
    assert api.get(path).json() == {"items": [], "next_cursor": None}
    assert events(app, "consent.recorded") == []


def test_agents_may_record_consent_and_strangers_may_not(app, api):
    contact_id = a_contact(app)
    with app.extensions["sigdesk"].database.session() as session:
        agent = factories.user(session, "agent")
        token = accounts.create_api_token(session, agent, "agent")
    url = f"{api.live_server.url}/api/v1/contacts/{contact_id}/consent"
    body = {"status": "opted_out", "source": "agent", "evidence": "Asked on the phone to stop offers"}
    by_agent = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert by_agent.status_code == 201 and by_agent.json()["source"] == "agent"
    assert (
        httpx.get(url, headers={"Authorization": f"Bearer {token}"}).json()["items"][0]["id"] == by_agent.json()["id"]
    )
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_consent_operations_are_in_the_openapi_document(api):
    document = api.get("/openapi.json").json()
    operations = document["paths"]["/contacts/{contact_id}/consent"]
    assert operations["post"]["operationId"] == "recordConsent" and "201" in operations["post"]["responses"]
    assert operations["get"]["operationId"] == "listConsent"
    schema = document["components"]["schemas"]["RecordConsent"]
    assert schema["properties"]["source"]["enum"] == ["form", "import", "agent", "api"]
