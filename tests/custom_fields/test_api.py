"""Custom fields in the REST API: admins define them at /contact-fields (agents only read), and every
contact's JSON carries its values in `fields`; creating a contact takes its tags, stage and fields in one
go, editing takes only the fields given; bad input is a 4xx naming the part and stores nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select

from sigdesk.lifecycle import services as lifecycle
from sigdesk.models import Contact, ContactFieldValue, Stage
from tests.commanding import audit, events
from tests.custom_fields.helpers import Api

pytestmark = pytest.mark.database

FIELDS = [
    {"label": "Customer number", "kind": "text", "pattern": r"C-\d{4}"},
    {"label": "Seats", "kind": "number"},
    {"label": "Budget", "kind": "currency", "currency": "EUR"},
    {"label": "Renewal", "kind": "date"},
    {"label": "Newsletter", "kind": "boolean"},
    {"label": "Plan", "kind": "choice", "options": ["Free", "Pro"]},
    {"label": "Interests", "kind": "choices", "options": ["Shoes", "Bags"]},
    {"label": "Website", "kind": "link"},
]
GOOD = {
    "customer_number": "C-1234",
    "seats": 12,
    "budget": 1500.5,
    "renewal": "2027-01-31",
    "newsletter": True,
    "plan": "Pro",
    "interests": ["Shoes", "Bags"],
    "website": "https://example.com",
}
BAD = {
    "customer_number": "1234",
    "seats": "twelve",
    "budget": 1.005,
    "renewal": "31/01/2027",
    "newsletter": "yes",
    "plan": "Enterprise",
    "interests": "Shoes",
    "website": "ftp://example.com",
}


@pytest.fixture
def admin(app, owner) -> Api:
    return Api.of(app, "admin")


@pytest.fixture
def agent(app, owner) -> Api:
    return Api.of(app, "agent")


@pytest.fixture
def defined(admin) -> dict[str, int]:
    ids = {}
    for body in FIELDS:
        answer = admin.call("POST", "/contact-fields", body)
        assert answer.status_code == 201, answer.json
        ids[answer.json["key"]] = answer.json["id"]
    return ids


def _stored(app) -> tuple[int, int]:
    with app.extensions["sigdesk"].database.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Contact)),
            session.scalar(select(func.count()).select_from(ContactFieldValue)),
        )


def test_admins_define_and_everyone_reads_the_fields(app, admin, agent, defined):
    listed = agent.call("GET", "/contact-fields").json["items"]
    assert [item["key"] for item in listed] == list(GOOD)
    assert listed[2] == {
        "id": defined["budget"],
        "key": "budget",
        "label": "Budget",
        "kind": "currency",
        "required": False,
        "pattern": None,
        "options": [],
        "currency": "EUR",
        "position": 3,
    }
    assert agent.call("GET", f"/contact-fields/{defined['plan']}").json["options"] == ["Free", "Pro"]
    changed = admin.call(
        "PATCH", f"/contact-fields/{defined['plan']}", {"label": "Tier", "options": ["Free", "Pro", "Max"]}
    )
    assert changed.status_code == 200 and (changed.json["label"], changed.json["key"]) == ("Tier", "plan")
    assert admin.call("GET", "/contact-fields/999999").status_code == 404


def test_agents_may_not_define_change_or_delete_fields(agent, defined):
    assert agent.call("POST", "/contact-fields", {"label": "X", "kind": "text"}).status_code == 403
    assert agent.call("PATCH", f"/contact-fields/{defined['plan']}", {"label": "X"}).status_code == 403
    assert agent.call("DELETE", f"/contact-fields/{defined['plan']}").status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "Code", "kind": "text", "pattern": "(a+)+"}, "pattern"),
        ({"label": "Code", "kind": "text", "pattern": "[unclosed"}, "pattern"),
        ({"label": "Plan", "kind": "choice"}, "options"),
        ({"label": "Money", "kind": "currency"}, "currency"),
        ({"label": "Email", "kind": "text", "key": "email"}, "key"),
        ({"label": "X", "kind": "colour"}, "kind"),
    ],
)
def test_a_bad_definition_is_a_400_naming_its_part(admin, body, field):
    answer = admin.call("POST", "/contact-fields", body)
    assert (answer.status_code, answer.json["field"]) == (400, field)


def test_the_kind_of_a_field_in_use_cannot_change(admin, defined):
    assert admin.call("POST", "/contacts", {"phone": "+12025550100", "fields": {"seats": 3}}).status_code == 201
    answer = admin.call("PATCH", f"/contact-fields/{defined['seats']}", {"kind": "text"})
    assert (answer.status_code, answer.json["field"]) == (409, "kind")


def test_a_contact_carries_every_kind_of_value_in_its_json(app, agent, defined):
    created = agent.call("POST", "/contacts", {"phone": "+1 202 555 0123", "fields": GOOD})
    assert created.status_code == 201, created.json
    assert created.json["fields"] == GOOD
    contact_id = created.json["id"]
    assert agent.call("GET", f"/contacts/{contact_id}").json["fields"] == GOOD
    listed = agent.call("GET", "/contacts").json["items"]
    assert [item["fields"] for item in listed] == [GOOD]
    assert audit(app, "contact.created")[-1].detail["fields"] == sorted(f"fields.{key}" for key in GOOD)


@pytest.mark.parametrize("key", list(BAD))
def test_each_kind_refuses_a_bad_value_naming_it_and_stores_nothing(app, agent, defined, key):
    before = _stored(app)
    answer = agent.call("POST", "/contacts", {"phone": "+12025550123", "fields": {key: BAD[key]}})
    assert (answer.status_code, answer.json["field"]) == (400, f"fields.{key}")
    assert _stored(app) == before


def test_an_unknown_field_is_refused_naming_it(agent, defined):
    answer = agent.call("POST", "/contacts", {"phone": "+12025550123", "fields": {"shoe_size": 42}})
    assert (answer.status_code, answer.json["field"]) == (400, "fields.shoe_size")


def test_a_required_field_must_be_given_on_creation_and_cannot_be_cleared(app, admin, agent, defined):
    admin.call("PATCH", f"/contact-fields/{defined['plan']}", {"required": True})
    missing = agent.call("POST", "/contacts", {"phone": "+12025550123"})
    assert (missing.status_code, missing.json["field"]) == (400, "fields.plan")
    created = agent.call("POST", "/contacts", {"phone": "+12025550123", "fields": {"plan": "free"}})
    assert created.status_code == 201 and created.json["fields"] == {"plan": "Free"}
    cleared = agent.call("PATCH", f"/contacts/{created.json['id']}", {"fields": {"plan": None}})
    assert (cleared.status_code, cleared.json["field"]) == (400, "fields.plan")


def test_editing_changes_only_the_fields_given(app, agent, defined):
    contact_id = agent.call("POST", "/contacts", {"phone": "+12025550123", "fields": GOOD}).json["id"]
    answer = agent.call("PATCH", f"/contacts/{contact_id}", {"fields": {"seats": 13, "website": None}})
    assert answer.status_code == 200
    expected = {**GOOD, "seats": 13}
    del expected["website"]
    assert answer.json["fields"] == expected
    entry = audit(app, "contact.updated")[-1]
    assert entry.detail["fields"] == ["fields.seats", "fields.website"]
    assert events(app, "contact.changed")[-1]["fields"] == ["fields.seats", "fields.website"]
    unchanged = agent.call("PATCH", f"/contacts/{contact_id}", {"fields": {"seats": 13}, "company": None})
    assert unchanged.status_code == 200 and len(audit(app, "contact.updated")) == 1


def test_a_contact_is_created_with_its_tags_stage_and_fields_in_one_call(app, admin, defined):
    with app.extensions["sigdesk"].database.session() as session:
        session.execute(delete(Stage))
        session.commit()
    admin.call("POST", "/stages", {"name": "Lead"})
    admin.call("POST", "/tags", {"name": "VIP"})
    answer = admin.call(
        "POST",
        "/contacts",
        {"phone": "+12025550123", "name": "Ada", "tags": ["vip", "Wholesale"], "stage": "lead", "fields": {"seats": 2}},
    )
    assert answer.status_code == 201, answer.json
    assert (answer.json["tags"], answer.json["stage"], answer.json["fields"]) == (
        ["VIP", "Wholesale"],
        "Lead",
        {"seats": 2},
    )
    assert audit(app, "contact.created")[-1].detail["fields"] == ["name", "fields.seats", "tags", "stage"]
    with app.extensions["sigdesk"].database.session() as session:
        assert lifecycle.find_tag(session, "wholesale") is not None  # created on first use by an admin


def test_an_unknown_stage_or_a_new_tag_from_an_agent_is_refused_and_stores_nothing(app, agent, defined):
    before = _stored(app)
    stage = agent.call("POST", "/contacts", {"phone": "+12025550123", "stage": "Nowhere", "fields": {"seats": 1}})
    assert (stage.status_code, stage.json["field"]) == (422, "stage")
    tag = agent.call("POST", "/contacts", {"phone": "+12025550123", "tags": ["Brand new"], "fields": {"seats": 1}})
    assert (tag.status_code, tag.json["field"]) == (422, "tags") and "Brand new" in tag.json["error"]
    assert _stored(app) == before


def test_a_phone_already_on_record_is_still_a_409_and_stores_no_values(app, agent, defined):
    first = agent.call("POST", "/contacts", {"phone": "+12025550123", "fields": {"seats": 1}})
    assert first.status_code == 201
    again = agent.call("POST", "/contacts", {"phone": "+1 (202) 555-0123", "fields": {"seats": 2}})
    assert (again.status_code, again.json["field"]) == (409, "phone")
    assert _stored(app) == (1, 1)


def test_deleting_a_field_through_the_api_says_how_many_values_went(app, admin, agent, defined):
    contact_id = agent.call("POST", "/contacts", {"phone": "+12025550123", "fields": {"seats": 1, "plan": "Pro"}}).json[
        "id"
    ]
    answer = admin.call("DELETE", f"/contact-fields/{defined['seats']}")
    assert answer.status_code == 200 and answer.json == {"id": defined["seats"], "values": 1}
    assert agent.call("GET", f"/contacts/{contact_id}").json["fields"] == {"plan": "Pro"}
    assert audit(app, "contact_field.delete")[-1].detail["values"] == 1
