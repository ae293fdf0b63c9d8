"""Segments and the contacts list's filters through the API: saved, renamed, counted, listed, refused with
the condition named, and who may do what."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from sqlalchemy import delete

from sigdesk.models import ContactField
from tests.commanding import audit, events
from tests.segments.helpers import Api, build_world

pytestmark = pytest.mark.database

VIP_BUDGETS = {
    "match": "all",
    "conditions": [
        {"field": "tag", "op": "has", "value": "VIP"},
        {"field": "field:budget", "op": "gt", "value": 100},
        {"field": "consent", "op": "is", "value": "opted_in"},
    ],
}


@pytest.fixture
def world(app):
    return build_world(app.extensions["sigdesk"].database)


@pytest.fixture
def agent(app):
    return Api.of(app, "agent")


@pytest.fixture
def admin(app):
    return Api.of(app, "admin")


def test_an_agent_saves_a_segment_and_the_team_sees_its_live_count_and_contacts(app, world, agent, admin):
    made = agent.call("POST", "/segments", {"name": "Warm VIPs", "definition": VIP_BUDGETS})
    assert made.status_code == 201, made.json
    segment_id = made.json["id"]
    assert made.json["name"] == "Warm VIPs" and made.json["created_by"] == agent.user_id
    assert made.json["definition"]["conditions"][1] == {"field": "field:budget", "op": "gt", "value": 100}
    assert admin.call("GET", f"/segments/{segment_id}/count").json == {"count": 1}
    listed = admin.call("GET", f"/segments/{segment_id}/contacts?sort=name")
    assert [item["id"] for item in listed.json["items"]] == [world.ids["alice"]]
    assert [item["name"] for item in admin.call("GET", "/segments").json["items"]] == ["Warm VIPs"]
    [entry] = audit(app, "segment.create")
    assert entry.channel == "api" and entry.detail["conditions"] == 3
    assert events(app, "segment.changed") == [{"segment_id": segment_id, "change": "created"}]

    changed = admin.call(
        "PATCH", f"/segments/{segment_id}", {"name": "Any VIP", "definition": {**VIP_BUDGETS, "match": "any"}}
    )
    assert changed.status_code == 200, changed.json
    assert admin.call("GET", f"/segments/{segment_id}/count").json == {"count": 1}
    assert [e["change"] for e in events(app, "segment.changed")] == ["created", "renamed", "redefined"]
    assert agent.call("DELETE", f"/segments/{segment_id}").status_code == 204
    assert agent.call("GET", f"/segments/{segment_id}").status_code == 404


def test_segment_names_are_unique_whatever_their_case(app, world, agent):
    assert agent.call("POST", "/segments", {"name": "VIPs", "definition": {}}).status_code == 201
    taken = agent.call("POST", "/segments", {"name": "vips", "definition": {}})
    assert taken.status_code == 409 and taken.json["field"] == "name"


@pytest.mark.parametrize(
    ("definition", "status", "field"),
    [
        (
            {"conditions": [{"field": "name", "op": "is", "value": "a"}, {"field": "tag", "op": "has", "value": 3}]},
            422,
            "conditions[1].value",
        ),
        ({"conditions": [{"field": "nope", "op": "is", "value": "a"}]}, 422, "conditions[0].field"),
        ({"conditions": [{"field": "city", "op": "gt", "value": "a"}]}, 422, "conditions[0].op"),
        ({"match": "most"}, 400, "definition"),
        ("all", 400, "definition"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_condition_and_nothing_is_saved(
    app, world, agent, definition, status, field
):
    refused = agent.call("POST", "/segments", {"name": "Broken", "definition": definition})
    assert refused.status_code == status, refused.json
    assert refused.json["field"] == field
    assert agent.call("GET", "/segments").json == {"items": []}


def test_a_segment_whose_custom_field_was_deleted_says_so(app, world, agent):
    segment_id = agent.call("POST", "/segments", {"name": "Budgets", "definition": VIP_BUDGETS}).json["id"]
    with app.extensions["sigdesk"].database.session() as session:
        session.execute(delete(ContactField).where(ContactField.key == "budget"))
        session.commit()
    for path in (
        f"/segments/{segment_id}/count",
        f"/segments/{segment_id}/contacts",
        f"/contacts?segment={segment_id}",
    ):
        refused = agent.call("GET", path)
        assert refused.status_code == 422, path
        assert refused.json["error"].endswith("The custom field 'budget' no longer exists; edit the segment")
        assert refused.json["field"] == "conditions[1].field"
    assert agent.call("GET", f"/segments/{segment_id}").status_code == 200


def test_the_contacts_list_filters_sorts_and_counts(app, world, agent):
    ids = world.ids
    assert [c["id"] for c in agent.call("GET", "/contacts?tag=vip").json["items"]] == [ids["alice"]]
    assert [c["id"] for c in agent.call("GET", "/contacts?stage=Customer").json["items"]] == [ids["bob"]]
    assert [c["id"] for c in agent.call("GET", "/contacts?consent=unknown").json["items"]] == [ids["cleo"]]
    by_name = agent.call("GET", "/contacts?sort=name").json["items"]
    assert [c["id"] for c in by_name] == [ids["cleo"], ids["alice"], ids["bob"]]  # "1555..." sorts first
    newest = agent.call("GET", "/contacts").json["items"]
    assert [c["id"] for c in newest] == [ids["cleo"], ids["bob"], ids["alice"]]
    text = quote(json.dumps({"conditions": [{"field": "field:plan", "op": "in", "value": ["pro", "basic"]}]}))
    filtered = agent.call("GET", f"/contacts?filter={text}&sort=-field:budget&limit=1")
    assert [c["id"] for c in filtered.json["items"]] == [ids["alice"]]
    following = agent.call(
        "GET", f"/contacts?filter={text}&sort=-field:budget&limit=1&cursor={filtered.json['next_cursor']}"
    )
    assert [c["id"] for c in following.json["items"]] == [ids["bob"]]
    assert agent.call("GET", f"/contacts/count?filter={text}&q=bob").json == {"count": 1}
    assert agent.call("GET", "/contacts/count?tag=VIP&stage=Customer").json == {"count": 0}
    assert agent.call("GET", "/contacts/count").json == {"count": 3}


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("tag=Gold", 422, "tag"),
        ("stage=Won", 422, "stage"),
        ("consent=maybe", 400, "consent"),
        ("segment=999", 404, "segment"),
        ("filter=%7Bnope", 422, "filter"),
        ("sort=shoe_size", 400, "sort"),
        ("filter=" + quote('{"conditions":[{"field":"owner","op":"is","value":"x"}]}'), 422, "conditions[0].value"),
    ],
)
def test_bad_list_filters_are_refused_naming_the_parameter(app, world, agent, query, status, field):
    for path in ("/contacts", "/contacts/count"):
        if path.endswith("count") and query.startswith("sort"):
            continue
        refused = agent.call("GET", f"{path}?{query}")
        assert refused.status_code == status, (path, refused.json)
        assert refused.json["field"] == field


def test_bulk_actions_on_a_selection_and_on_a_filter(app, world, agent, admin):
    ids = world.ids
    with app.extensions["sigdesk"].database.session() as session:
        from sigdesk.lifecycle.services import find_stage, find_tag

        vip, customer = find_tag(session, "VIP").id, find_stage(session, "Customer").id
    tagged = agent.call("POST", "/contacts/bulk", {"action": "tag", "value": vip, "ids": [ids["bob"], ids["alice"]]})
    assert tagged.json == {"action": "tag", "matched": 2, "done": 1, "refused": 0}
    assert agent.call("GET", "/contacts/count?tag=VIP").json == {"count": 2}
    staged = agent.call(
        "POST",
        "/contacts/bulk",
        {
            "action": "set_stage",
            "value": customer,
            "filter": {"conditions": [{"field": "tag", "op": "has", "value": "VIP"}]},
        },
    )
    assert staged.json == {"action": "set_stage", "matched": 2, "done": 1, "refused": 0}
    owned = agent.call("POST", "/contacts/bulk", {"action": "set_owner", "value": agent.user_id, "q": "bob"})
    assert owned.json["done"] == 1
    assert [c["owner_id"] for c in agent.call("GET", "/contacts?q=bob").json["items"]] == [agent.user_id]
    [entry] = audit(app, "contacts.bulk")[-1:]
    assert entry.detail["action"] == "set_owner" and entry.detail["target"] == "filter"
    assert events(app, "contacts.bulk_changed")[0] == {
        "action": "tag",
        "count": 1,
        "refused": 0,
        "tag_id": vip,
        "stage_id": None,
        "owner_id": None,
    }

    refused = agent.call("POST", "/contacts/bulk", {"action": "delete", "ids": [ids["cleo"]], "confirm": True})
    assert refused.status_code == 403
    unconfirmed = admin.call("POST", "/contacts/bulk", {"action": "delete", "ids": [ids["cleo"]]})
    assert unconfirmed.status_code == 422 and unconfirmed.json["field"] == "confirm"
    deleted = admin.call("POST", "/contacts/bulk", {"action": "delete", "confirm": True})
    assert deleted.json == {"action": "delete", "matched": 3, "done": 2, "refused": 1}  # Bob has a conversation
    assert [c["id"] for c in admin.call("GET", "/contacts").json["items"]] == [ids["bob"]]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"action": "paint", "ids": [1]}, 400, "action"),
        ({"action": "tag", "value": 99999, "ids": [1]}, 404, "value"),
        ({"action": "tag", "ids": [1]}, 400, "value"),
        ({"action": "set_owner", "value": 99999, "ids": [1]}, 400, "value"),
        ({"action": "tag", "value": 1, "ids": []}, 400, "ids"),
        ({"action": "tag", "value": 1, "ids": [1], "q": "x"}, 400, "ids"),
        ({"action": "tag", "value": 1, "segment": 999}, 404, "segment"),
    ],
)
def test_bad_bulk_requests_are_refused_naming_the_field(app, world, admin, body, status, field):
    refused = admin.call("POST", "/contacts/bulk", body)
    assert refused.status_code == status, refused.json
    assert refused.json["field"] == field
    assert audit(app, "contacts.bulk") == []


def test_the_count_and_bulk_addresses_refuse_other_methods_with_405(app, agent):
    for method, path in [("PATCH", "/contacts/count"), ("DELETE", "/contacts/count"), ("GET", "/contacts/bulk")]:
        answer = agent.call(method, path)
        assert answer.status_code == 405, (method, path, answer.json)
        assert "Allow" in answer.headers
