"""The duplicates and merge operations of the API: the same commands as the page (same audit entry and
event), admins only, and bad input a 4xx naming the field with nothing lost."""

from __future__ import annotations

import pytest

from sigdesk.models import Contact
from tests import factories
from tests.commanding import audit, events
from tests.lifecycle.helpers import Api

pytestmark = pytest.mark.database


@pytest.fixture
def admin(app):
    return Api.of(app, "admin")


@pytest.fixture
def agent(app):
    return Api.of(app, "agent")


@pytest.fixture
def pair(app) -> tuple[int, int]:
    with app.extensions["sigdesk"].database.session() as session:
        kept = factories.contact(session, name="Ana Souza", email="ana@example.com", city="Lisbon")
        merged = factories.contact(session, name="ana souza", email="ana@example.com", company="ACME", city="Porto")
        factories.message(session, factories.conversation(session, merged), text="hi")
        session.commit()
        return kept.id, merged.id


def test_an_admin_lists_previews_merges_and_describes_duplicates(app, admin, pair):
    kept_id, merged_id = pair
    listed = admin.call("GET", "/contacts/duplicates")
    assert listed.status_code == 200, listed.json
    [item] = listed.json["items"]
    assert (item["first"]["id"], item["second"]["id"], item["reasons"]) == (kept_id, merged_id, ["email", "name"])
    assert listed.json["next_cursor"] is None and listed.json["partial"] is False

    preview = admin.call("GET", f"/contacts/{kept_id}/merge-preview?other={merged_id}")
    assert preview.status_code == 200, preview.json
    city = next(field for field in preview.json["fields"] if field["field"] == "city")
    assert city == {
        "field": "city",
        "label": "City",
        "kept": "Lisbon",
        "merged": "Porto",
        "conflict": True,
        "default": "keep",
    }
    assert preview.json["moves"]["messages"] == 1

    done = admin.call("POST", f"/contacts/{kept_id}/merge", {"merge_id": merged_id, "picks": {"city": "merge"}})
    assert done.status_code == 200, done.json
    assert done.json["contact"]["city"] == "Porto" and done.json["contact"]["company"] == "ACME"
    assert done.json["moved"]["messages"] == 1 and done.json["picks"]["city"] == "merge"
    assert admin.call("GET", f"/contacts/{merged_id}").status_code == 404
    merges = admin.call("GET", f"/contacts/{kept_id}/merges")
    [record] = merges.json["items"]
    assert (record["merged_id"], record["into_id"], record["actor_id"]) == (merged_id, kept_id, admin.user_id)
    assert record["merged"]["city"] == "Porto"
    [entry] = audit(app, "contact.merged")
    assert entry.channel == "api" and "token_id" in entry.detail
    assert events(app, "contacts.merged")[0]["merge_id"] == done.json["merge_id"]
    assert admin.call("GET", "/contacts/duplicates").json["items"] == []


def test_a_dismissed_pair_leaves_the_list(admin, pair):
    kept_id, merged_id = pair
    done = admin.call("POST", "/contacts/duplicates/dismiss", {"first_id": merged_id, "second_id": kept_id})
    assert done.json == {"first_id": merged_id, "second_id": kept_id, "changed": True}
    assert admin.call("GET", "/contacts/duplicates").json["items"] == []


def test_a_merge_into_itself_is_a_422_naming_merge_id(app, admin, pair):
    kept_id, _ = pair
    refused = admin.call("POST", f"/contacts/{kept_id}/merge", {"merge_id": kept_id})
    assert refused.status_code == 422 and refused.json["field"] == "merge_id" and "itself" in refused.json["error"]
    preview = admin.call("GET", f"/contacts/{kept_id}/merge-preview?other={kept_id}")
    assert preview.status_code == 422 and preview.json["field"] == "merge_id"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"merge_id": 999_999}, 404, "merge_id"),
        ({"merge_id": "2"}, 400, "merge_id"),
        ({}, 400, "merge_id"),
        ({"merge_id": 1, "picks": {"city": "both"}}, 400, "picks"),
        ({"merge_id": 1, "picks": {"shoe_size": "keep"}}, 400, "picks"),
        ({"merge_id": 1, "extra": 1}, 400, "extra"),
    ],
)
def test_bad_merges_are_refused_naming_the_field_and_lose_nothing(app, admin, pair, body, status, field):
    kept_id, merged_id = pair
    body = dict(body)  # the parameters are shared by both backends' runs
    if body.get("merge_id") == 1:
        body["merge_id"] = merged_id
    refused = admin.call("POST", f"/contacts/{kept_id}/merge", body)
    assert refused.status_code == status, refused.json
    assert refused.json["field"].startswith(field)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Contact, merged_id) is not None and session.get(Contact, kept_id).city == "Lisbon"


def test_unknown_contacts_are_404s(admin, pair):
    kept_id, _ = pair
    assert admin.call("POST", "/contacts/999999/merge", {"merge_id": kept_id}).json["field"] == "contact_id"
    assert admin.call("GET", f"/contacts/999999/merge-preview?other={kept_id}").status_code == 404
    assert admin.call("GET", "/contacts/999999/merges").status_code == 404
    assert (
        admin.call("POST", "/contacts/duplicates/dismiss", {"first_id": kept_id, "second_id": 999999}).status_code
        == 404
    )


def test_agents_may_read_merges_but_not_merge_or_see_duplicates(agent, pair):
    kept_id, merged_id = pair
    assert agent.call("GET", "/contacts/duplicates").status_code == 403
    assert agent.call("GET", f"/contacts/{kept_id}/merge-preview?other={merged_id}").status_code == 403
    assert agent.call("POST", f"/contacts/{kept_id}/merge", {"merge_id": merged_id}).status_code == 403
    assert (
        agent.call("POST", "/contacts/duplicates/dismiss", {"first_id": kept_id, "second_id": merged_id}).status_code
        == 403
    )
    assert agent.call("GET", f"/contacts/{kept_id}/merges").json == {"contact_id": kept_id, "items": []}


def test_merge_is_in_the_openapi_document(admin):
    document = admin.call("GET", "/openapi.json").json
    operations = {
        op["operationId"] for path in document["paths"].values() for op in path.values() if "operationId" in op
    }
    assert {"listDuplicates", "dismissDuplicates", "previewMerge", "mergeContacts", "listMerges"} <= operations
