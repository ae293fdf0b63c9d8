"""The broadcasts API: the same commands as the pages and the CLI, with the same audit entries and events;
bad input is a 4xx naming the field that stores nothing; only admins and the owner may run campaigns."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sigdesk.db import utcnow
from sigdesk.models import Message
from sigdesk.models.broadcast import RECIPIENT_STATES, Broadcast
from tests import factories
from tests.broadcasts.campaigns import customer, hello
from tests.commanding import audit, events
from tests.waiting import wait_for

pytestmark = pytest.mark.database


@pytest.fixture
def http(app):
    return app.test_client()


def token_for(app, role: str) -> dict[str, str]:
    with app.extensions["sigdesk"].database.session() as session:
        token = factories.api_token(session, factories.user(session, role))
    return {"Authorization": f"Bearer {token}"}


def _setup(app, people: int = 3, **template):
    with app.extensions["sigdesk"].database.session() as session:
        contacts = [customer(session, display_name=f"Customer {n}") for n in range(people)]
        made = hello(session, **template)
        return [c.id for c in contacts], made.name, made.language


def _body(template: str, language: str, contact_ids: list[int], **fields):
    return {
        "name": "December batch",
        "template": {"name": template, "language": language, "variables": {"1": "{contact.first_name|there}"}},
        "audience": {"contact_ids": contact_ids},
        **fields,
    }


def _stored(app) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(func.count(Broadcast.id))) or 0


def test_a_broadcast_is_created_started_and_followed_through_the_api(app, http, owner):
    admin = token_for(app, "admin")
    ids, name, language = _setup(app)
    made = http.post("/api/v1/broadcasts", json=_body(name, language, ids, rate_per_second=10), headers=admin)
    assert made.status_code == 201, made.get_json()
    broadcast = made.get_json()
    assert (broadcast["status"], broadcast["rate_per_second"], broadcast["recipient_count"]) == ("draft", 10, 0)
    assert broadcast["template"] == {"name": name, "language": language, "category": "MARKETING"}
    assert broadcast["counts"] == dict.fromkeys(RECIPIENT_STATES, 0) and "unknown" in broadcast["counts"]

    summary = http.get(f"/api/v1/broadcasts/{broadcast['id']}/summary", headers=admin).get_json()
    assert (summary["will_send"], summary["duration_seconds"], summary["limit_tier"]) == (3, 1, "250")
    assert summary["limit_used_share"] == pytest.approx(3 / 250)

    started = http.post(f"/api/v1/broadcasts/{broadcast['id']}/start", headers=admin)
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["status"] == "running" and started.get_json()["counts"]["pending"] == 3
    again = http.post(f"/api/v1/broadcasts/{broadcast['id']}/start", headers=admin)
    assert again.status_code == 409 and "already running" in again.get_json()["error"]

    shown = http.get(f"/api/v1/broadcasts/{broadcast['id']}", headers=admin).get_json()
    assert set(shown["counts"]) == set(RECIPIENT_STATES) and shown["recipient_count"] == 3
    assert [entry.channel for entry in audit(app, "broadcast.created") + audit(app, "broadcast.started")] == [
        "api",
        "api",
    ]
    assert [event["change"] for event in events(app, "broadcast.changed")] == ["created", "started"]


def test_pause_resume_and_cancel_through_the_api_are_the_commands(app, http, owner):
    admin = token_for(app, "admin")
    ids, name, language = _setup(app)
    broadcast_id = http.post("/api/v1/broadcasts", json=_body(name, language, ids), headers=admin).get_json()["id"]
    http.post(f"/api/v1/broadcasts/{broadcast_id}/start", headers=admin)
    paused = http.post(f"/api/v1/broadcasts/{broadcast_id}/pause", headers=admin).get_json()
    assert (paused["status"], paused["pause_kind"]) == ("paused", "person")
    assert http.post(f"/api/v1/broadcasts/{broadcast_id}/resume", headers=admin).get_json()["status"] == "running"
    cancelled = http.post(f"/api/v1/broadcasts/{broadcast_id}/cancel", headers=admin).get_json()
    assert cancelled["status"] == "cancelled" and cancelled["counts"]["skipped"] == 3
    assert http.post(f"/api/v1/broadcasts/{broadcast_id}/resume", headers=admin).status_code == 409
    changes = [(event["change"], event["status"]) for event in events(app, "broadcast.changed")]
    assert changes[2:] == [("paused", "paused"), ("resumed", "running"), ("cancelled", "cancelled")]
    assert [entry.detail["skipped"] for entry in audit(app, "broadcast.cancelled")] == [3]


@pytest.mark.parametrize(
    "change, status, field",
    [
        ({"scheduled_at": "2020-01-01T09:00:00Z"}, 400, "scheduled_at"),
        ({"scheduled_at": "tomorrow"}, 400, "scheduled_at"),
        ({"rate_per_second": 5000}, 400, "rate_per_second"),
        ({"audience": {"segment_id": 77}}, 404, "audience.segment_id"),
        ({"audience": {}}, 400, "audience"),
        ({"template": {"name": "nope", "language": "en_US"}}, 404, "template.name"),
        ({"template": {"name": "T", "language": "L", "variables": {"1": "{contact.age}"}}}, 400, None),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_stores_nothing(app, http, owner, change, status, field):
    admin = token_for(app, "admin")
    ids, name, language = _setup(app, 1)
    body = _body(name, language, ids)
    if "template" in change and change["template"]["name"] == "T":
        change = {"template": {**change["template"], "name": name, "language": language}}
        field = "template.variables.body.1"
    body.update(change)
    refused = http.post("/api/v1/broadcasts", json=body, headers=admin)
    assert refused.status_code == status, refused.get_json()
    assert refused.get_json()["field"] == field
    assert _stored(app) == 0


PACE_WORDS = "The pace must be between 1 and 80 messages per second (this number's throughput; Settings → Broadcasts)"


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"name": ""}, "name", "Give the broadcast a name"),
        ({"name": "   "}, "name", "Give the broadcast a name"),
        ({"rate_per_second": 0}, "rate_per_second", PACE_WORDS),
        ({"rate_per_second": 5000}, "rate_per_second", PACE_WORDS),
        ({"rate_per_second": 81}, "rate_per_second", PACE_WORDS),
    ],
)
def test_an_empty_name_or_a_pace_out_of_range_is_refused_in_the_pages_words(app, http, owner, change, field, words):
    admin = token_for(app, "admin")
    ids, name, language = _setup(app, 1)
    refused = http.post("/api/v1/broadcasts", json={**_body(name, language, ids), **change}, headers=admin)
    assert refused.status_code == 400, refused.get_json()
    assert (refused.get_json()["field"], refused.get_json()["error"]) == (field, words)
    assert _stored(app) == 0


def test_a_template_not_approved_is_a_422_and_agents_may_not_run_campaigns(app, http, owner):
    admin, agent = token_for(app, "admin"), token_for(app, "agent")
    ids, name, language = _setup(app, 1, status="PAUSED")
    refused = http.post("/api/v1/broadcasts", json=_body(name, language, ids), headers=admin)
    assert refused.status_code == 422 and refused.get_json()["field"] == "template"
    assert http.get("/api/v1/broadcasts", headers=agent).status_code == 403
    assert http.post("/api/v1/broadcasts", json=_body(name, language, ids), headers=agent).status_code == 403


def test_a_scheduled_broadcast_waits_for_its_time(app, http, owner):
    admin = token_for(app, "admin")
    ids, name, language = _setup(app, 1)
    later = (utcnow() + timedelta(days=1)).isoformat()
    made = http.post("/api/v1/broadcasts", json=_body(name, language, ids, scheduled_at=later), headers=admin)
    started = http.post(f"/api/v1/broadcasts/{made.get_json()['id']}/start", headers=admin).get_json()
    assert (started["status"], started["recipient_count"]) == ("scheduled", 0)


def test_recipients_are_listed_by_state_a_page_at_a_time(app, http, owner):
    admin = token_for(app, "admin")
    with app.extensions["sigdesk"].database.session() as session:
        people = [customer(session) for _ in range(5)]
        out = customer(session, consent="opted_out")
        template = hello(session)
    body = _body(template.name, template.language, [p.id for p in people] + [out.id])
    broadcast_id = http.post("/api/v1/broadcasts", json=body, headers=admin).get_json()["id"]
    http.post(f"/api/v1/broadcasts/{broadcast_id}/start", headers=admin)
    first = http.get(f"/api/v1/broadcasts/{broadcast_id}/recipients?limit=2&state=", headers=admin).get_json()
    assert [item["contact_id"] for item in first["items"]] == [people[0].id, people[1].id]
    rest = http.get(
        f"/api/v1/broadcasts/{broadcast_id}/recipients?limit=10&cursor={first['next_cursor']}", headers=admin
    ).get_json()
    assert [item["contact_id"] for item in rest["items"]] == [p.id for p in people[2:]] + [out.id]
    assert rest["next_cursor"] is None
    skipped = http.get(f"/api/v1/broadcasts/{broadcast_id}/recipients?state=skipped", headers=admin).get_json()
    assert [(item["contact_id"], item["reason"]) for item in skipped["items"]] == [(out.id, "opted out of marketing")]
    assert http.get(f"/api/v1/broadcasts/{broadcast_id}/recipients?state=lost", headers=admin).status_code == 400
    assert http.get("/api/v1/broadcasts/999/recipients", headers=admin).status_code == 404


def test_broadcasts_are_listed_newest_first_a_page_at_a_time(app, http, owner):
    admin = token_for(app, "admin")
    ids, name, language = _setup(app, 1)
    made = [
        http.post("/api/v1/broadcasts", json=_body(name, language, ids, name=f"B{n}"), headers=admin).get_json()["id"]
        for n in range(3)
    ]
    first = http.get("/api/v1/broadcasts?limit=2", headers=admin).get_json()
    rest = http.get(f"/api/v1/broadcasts?limit=2&cursor={first['next_cursor']}", headers=admin).get_json()
    assert [item["id"] for item in first["items"] + rest["items"]] == made[::-1]
    assert rest["next_cursor"] is None


def test_a_test_send_reaches_meta_through_the_inbox_send_path(app, api, fake_graph):
    with app.extensions["sigdesk"].database.session() as session:
        model = customer(session, display_name="Ana López")
        template = hello(session)
    body = _body(template.name, template.language, [model.id])
    broadcast_id = api.post("/broadcasts", json=body).json()["id"]
    stranger = api.post(f"/broadcasts/{broadcast_id}/test", json={"phone": "+49 170 5550001", "contact_id": model.id})
    assert stranger.status_code == 422 and stranger.json()["field"] == "phone"  # not a contact: no one is created
    with app.extensions["sigdesk"].database.session() as session:
        factories.contact(session, "491705550001", display_name="The owner's phone")
        session.commit()
    sent = api.post(f"/broadcasts/{broadcast_id}/test", json={"phone": "+49 170 5550001", "contact_id": model.id})
    assert sent.status_code == 202, sent.json()
    [payload] = wait_for(fake_graph.messages_sent)
    assert payload["to"] == "491705550001" and payload["template"]["name"] == template.name
    assert payload["template"]["components"] == [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]
    with app.extensions["sigdesk"].database.session() as session:
        message = session.get(Message, sent.json()["message_id"])
        assert message.broadcast_id is None and message.text == "Hello Ana!"
    refused = api.post(f"/broadcasts/{broadcast_id}/test", json={"phone": "12"})
    assert refused.status_code == 400 and refused.json()["field"] == "phone"


def test_the_openapi_document_lists_every_status_and_every_count_a_broadcast_has(http):
    doc = http.get("/api/v1/openapi.json").get_json()
    for action in ("start", "pause", "resume", "cancel"):
        assert "post" in doc["paths"][f"/broadcasts/{{broadcast_id}}/{action}"]
    assert "get" in doc["paths"]["/broadcasts/{broadcast_id}/recipients"]
    created = doc["paths"]["/broadcasts"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    broadcast = doc["components"]["schemas"][created["$ref"].rsplit("/", 1)[1]]["properties"]
    assert broadcast["status"]["enum"] == ["draft", "scheduled", "running", "paused", "completed", "cancelled"]
    assert broadcast["counts"]["required"] == list(RECIPIENT_STATES) and "unknown" in broadcast["counts"]["required"]
