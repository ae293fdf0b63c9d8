"""The tags and stages API: each operation calls the same command as the pages (same audit entry and event),
roles decide who manages and who classifies, and bad input is a 4xx naming the field."""

from __future__ import annotations

import httpx
import pytest

from sigdesk.auth import services as accounts
from sigdesk.models import User
from tests import factories
from tests.commanding import audit, events
from tests.conftest import csrf_from
from tests.lifecycle.helpers import Api, clear_stages

pytestmark = pytest.mark.database


@pytest.fixture
def admin(app):
    clear_stages(app.extensions["sigdesk"].database)
    return Api.of(app, "admin")


@pytest.fixture
def agent(app):
    return Api.of(app, "agent")


@pytest.fixture
def contact_id(app) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return factories.contact(session).id


def test_an_admin_manages_tags_through_the_api(app, admin):
    made = admin.call("POST", "/tags", {"name": "VIP", "color": 2})
    assert made.status_code == 201, made.json
    tag_id = made.json["id"]
    assert made.json == {"id": tag_id, "name": "VIP", "color": 2}
    changed = admin.call("PATCH", f"/tags/{tag_id}", {"name": "Gold", "color": 4})
    assert changed.json == {"id": tag_id, "name": "Gold", "color": 4}
    assert admin.call("GET", "/tags").json == {"items": [{"id": tag_id, "name": "Gold", "color": 4}]}
    assert admin.call("DELETE", f"/tags/{tag_id}").json == {"id": tag_id, "contacts": 0}
    assert admin.call("GET", "/tags").json == {"items": []}
    assert [e["change"] for e in events(app, "tag.changed")] == ["created", "renamed", "recoloured", "deleted"]
    [entry] = audit(app, "tag.create")
    assert entry.channel == "api" and "token_id" in entry.detail


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "ok", "color": 8}, "color"),
        ({"name": "ok", "color": "red"}, "color"),
        ({"name": "ok", "colour": 1}, "colour"),
        ({}, "name"),
    ],
)
def test_a_bad_tag_is_a_400_naming_the_field(admin, body, field):
    refused = admin.call("POST", "/tags", body)
    assert (refused.status_code, refused.json["field"]) == (400, field), refused.json


def test_a_duplicate_tag_is_a_409_naming_the_name(admin):
    assert admin.call("POST", "/tags", {"name": "VIP"}).status_code == 201
    other = admin.call("POST", "/tags", {"name": "Other"}).json["id"]
    for refused in (
        admin.call("POST", "/tags", {"name": "vip"}),
        admin.call("PATCH", f"/tags/{other}", {"name": "Vip"}),
    ):
        assert (refused.status_code, refused.json["field"]) == (409, "name")
        assert "VIP" in refused.json["error"]


def test_unknown_tags_stages_and_contacts_are_404s_naming_which(admin, contact_id):
    tag_id = admin.call("POST", "/tags", {"name": "VIP"}).json["id"]
    stage_id = admin.call("POST", "/stages", {"name": "Lead"}).json["id"]
    for method, path, body, field in (
        ("PATCH", "/tags/999999", {"name": "x"}, "tag_id"),
        ("DELETE", "/tags/999999", None, "tag_id"),
        ("PUT", f"/contacts/{contact_id}/tags/999999", None, "tag_id"),
        ("PUT", f"/contacts/999999/tags/{tag_id}", None, "contact_id"),
        ("GET", "/contacts/999999/tags", None, "contact_id"),
        ("PATCH", "/stages/999999", {"name": "x"}, "stage_id"),
        ("DELETE", "/stages/999999", None, "stage_id"),
        ("DELETE", f"/stages/{stage_id}?replacement_id=999999", None, "replacement_id"),
        ("PUT", f"/contacts/{contact_id}/stage", {"stage_id": 999999}, "stage_id"),
        ("PUT", "/contacts/999999/stage", {"stage_id": stage_id}, "contact_id"),
        ("GET", "/contacts/999999/stage-history", None, "contact_id"),
    ):
        refused = admin.call(method, path, body)
        assert (refused.status_code, refused.json["field"]) == (404, field), (method, path, refused.json)


def test_an_agent_tags_a_contact_but_may_not_manage_tags(app, admin, agent, contact_id):
    tag_id = admin.call("POST", "/tags", {"name": "VIP"}).json["id"]
    assert agent.call("POST", "/tags", {"name": "Mine"}).status_code == 403
    assert agent.call("PATCH", f"/tags/{tag_id}", {"color": 1}).status_code == 403
    assert agent.call("DELETE", f"/tags/{tag_id}").status_code == 403
    tagged = agent.call("PUT", f"/contacts/{contact_id}/tags/{tag_id}")
    assert tagged.json == {
        "contact_id": contact_id,
        "changed": True,
        "tags": [{"id": tag_id, "name": "VIP", "color": 0}],
    }
    assert agent.call("PUT", f"/contacts/{contact_id}/tags/{tag_id}").json["changed"] is False
    assert agent.call("GET", f"/contacts/{contact_id}/tags").json["tags"][0]["name"] == "VIP"
    untagged = agent.call("DELETE", f"/contacts/{contact_id}/tags/{tag_id}")
    assert untagged.json == {"contact_id": contact_id, "changed": True, "tags": []}
    assert [e["on"] for e in events(app, "contact.tagged")] == [True, False]
    with app.extensions["sigdesk"].database.session() as session:
        agent_email = session.get(User, agent.user_id).email
    assert [(e.actor, e.channel) for e in audit(app, "contact.tag")] == [(agent_email, "api")]


def test_stages_through_the_api_with_history_and_replacement(app, admin, agent, contact_id):
    lead = admin.call("POST", "/stages", {"name": "Lead"}).json
    won = admin.call("POST", "/stages", {"name": "Won"}).json
    first = admin.call("POST", "/stages", {"name": "Cold", "position": 1})
    assert first.status_code == 201 and first.json["position"] == 1
    assert [s["name"] for s in agent.call("GET", "/stages").json["items"]] == ["Cold", "Lead", "Won"]
    moved = admin.call("PATCH", f"/stages/{first.json['id']}", {"position": 3, "name": "Frozen"})
    assert moved.json == {"id": first.json["id"], "name": "Frozen", "position": 3}
    assert agent.call("POST", "/stages", {"name": "Mine"}).status_code == 403

    set_ = agent.call("PUT", f"/contacts/{contact_id}/stage", {"stage_id": lead["id"]})
    assert set_.json == {"contact_id": contact_id, "changed": True, "stage": {**lead, "position": 1}}
    refused = admin.call("DELETE", f"/stages/{lead['id']}")
    assert (refused.status_code, refused.json["field"]) == (409, "replacement_id")
    assert "choose a replacement" in refused.json["error"]
    deleted = admin.call("DELETE", f"/stages/{lead['id']}?replacement_id={won['id']}")
    assert deleted.json == {"id": lead["id"], "contacts": 1}

    history = agent.call("GET", f"/contacts/{contact_id}/stage-history").json
    assert history["current"]["name"] == "Won"
    assert [(item["stage"], item["channel"]) for item in history["items"]] == [("Lead", "api"), ("Won", "api")]
    assert history["items"][0]["left_at"] == history["items"][1]["entered_at"]
    cleared = agent.call("PUT", f"/contacts/{contact_id}/stage", {"stage_id": None})
    assert cleared.json == {"contact_id": contact_id, "changed": True, "stage": None}
    assert len(events(app, "contact.stage_changed")) == 3


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/stages", {"name": ""}, "name"),
        ("POST", "/stages", {"name": "Late", "position": 0}, "position"),
        ("POST", "/stages", {"name": "Late", "position": 99}, "position"),
        ("PATCH", "/stages/{lead}", {"position": "1"}, "position"),
        ("PUT", "/contacts/{contact}/stage", {"stage_id": "1"}, "stage_id"),
        ("PUT", "/contacts/{contact}/stage", {}, "stage_id"),
        ("DELETE", "/stages/{lead}?replacement_id=abc", None, "replacement_id"),
        ("PUT", "/contacts/abc/tags/1", None, "contact_id"),
    ],
)
def test_bad_stage_input_is_a_400_naming_the_field(admin, contact_id, method, path, body, field):
    lead = admin.call("POST", "/stages", {"name": "Lead"}).json["id"]
    refused = admin.call(method, path.format(lead=lead, contact=contact_id), body)
    assert (refused.status_code, refused.json["field"]) == (400, field), refused.json


def test_the_api_answers_over_real_http(app, owner, live_server, contact_id):
    with app.extensions["sigdesk"].database.session() as session:
        token = accounts.create_api_token(session, accounts.find_user(session, owner.email), "http")
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}) as http:
        tag = http.post("/tags", json={"name": "Wholesale"}).json()
        assert http.put(f"/contacts/{contact_id}/tags/{tag['id']}").json()["tags"] == [tag]
        document = http.get("/openapi.json").json()
    for path in (
        "/tags",
        "/tags/{tag_id}",
        "/contacts/{contact_id}/tags/{tag_id}",
        "/stages",
        "/stages/{stage_id}",
        "/contacts/{contact_id}/stage",
        "/contacts/{contact_id}/stage-history",
    ):
        assert path in document["paths"]


def test_the_page_and_the_api_leave_the_same_trail(app, auth, owner, admin):
    """Creating a tag from Settings → Tags and from the API: one command, the same audit entry and event."""
    page = auth.client.get("/admin/tags").get_data(as_text=True)
    assert (
        auth.client.post(
            "/admin/tags", data={"name": "From page", "color": "1", "csrf_token": csrf_from(page)}
        ).status_code
        == 302
    )
    assert admin.call("POST", "/tags", {"name": "From API", "color": 1}).status_code == 201
    entries = audit(app, "tag.create")
    assert [(e.channel, e.detail.get("name"), e.detail.get("color")) for e in entries] == [
        ("web", "From page", 1),
        ("api", "From API", 1),
    ]
    assert [e["change"] for e in events(app, "tag.changed")] == ["created", "created"]
