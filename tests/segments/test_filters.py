"""Every field and operator of the contact filter compiles to SQL and finds exactly the right contacts, on
SQLite and MariaDB; a definition it cannot use is refused naming the condition."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sigdesk.db import utcnow
from sigdesk.errors import Refused
from sigdesk.models import ContactField
from sigdesk.segments.filters import compile_filter, parse_definition, segments_using_field
from sigdesk.segments.services import count_contacts, find_contacts
from tests.segments.helpers import build_world

pytestmark = pytest.mark.database

TODAY = utcnow().date()


def _days_ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


CASES = [
    # (field, op, value) -> who passes
    (("name", "is", "alice smith"), {"alice"}),
    (("name", "is_not", "Alice Smith"), {"bob", "cleo"}),
    (("name", "contains", "jones"), {"bob"}),
    (("name", "starts_with", "Al"), {"alice"}),
    (("name", "is_empty", None), {"cleo"}),
    (("name", "is_set", None), {"alice", "bob"}),
    (("phone", "is", "+49 170 1111 1111"), {"alice"}),
    (("phone", "is_not", "+49 170 1111 1111"), {"bob", "cleo"}),
    (("phone", "contains", "612 345"), {"bob"}),
    (("phone", "starts_with", "+1 555"), {"cleo"}),
    (("email", "contains", "ACME"), {"alice"}),
    (("email", "is_empty", None), {"bob", "cleo"}),
    (("company", "is", "beta ltd"), {"bob"}),
    (("company", "is_set", None), {"alice", "bob"}),
    (("city", "is", "Berlin"), {"alice"}),
    (("country", "is", "fr"), {"bob"}),
    (("language", "is_set", None), {"alice"}),
    (("owner", "is", "none"), {"bob", "cleo"}),
    (("owner", "is_set", None), {"alice"}),
    (("created_at", "within_last_days", 7), {"bob", "cleo"}),
    (("created_at", "more_than_days_ago", 7), {"alice"}),
    (("created_at", "gt", _days_ago(7)), {"bob", "cleo"}),
    (("created_at", "lt", _days_ago(7)), {"alice"}),
    (("created_at", "eq", _days_ago(0)), {"cleo"}),
    (("created_at", "between", [_days_ago(11), _days_ago(4)]), {"alice", "bob"}),
    (("updated_at", "within_last_days", 3), {"alice", "cleo"}),
    (("last_inbound_at", "is_set", None), {"alice"}),
    (("last_outbound_at", "more_than_days_ago", 30), {"bob"}),
    (("last_contact_at", "within_last_days", 30), {"alice"}),
    (("last_contact_at", "more_than_days_ago", 30), {"bob"}),
    (("last_contact_at", "is_empty", None), {"cleo"}),
    (("last_contact_at", "lt", _days_ago(0)), {"bob", "alice"}),
    (("consent", "is", "opted_in"), {"alice"}),
    (("consent", "is_not", "opted_in"), {"bob", "cleo"}),
    (("consent", "in", ["opted_out", "unknown"]), {"bob", "cleo"}),
    (("tag", "has", "vip"), {"alice"}),
    (("tag", "has_not", "VIP"), {"bob", "cleo"}),
    (("tag", "is_empty", None), {"cleo"}),
    (("stage", "is", "Customer"), {"bob"}),
    (("stage", "is_not", "Customer"), {"alice", "cleo"}),
    (("stage", "in", ["Lead", "Customer"]), {"alice", "bob"}),
    (("stage", "is_empty", None), {"cleo"}),
    (("label", "has", "urgent"), {"bob"}),
    (("label", "has_not", "Urgent"), {"alice", "cleo"}),
    (("field:budget", "gt", 100), {"alice"}),
    (("field:budget", "lt", 100), {"bob"}),
    (("field:budget", "eq", 50), {"bob"}),
    (("field:budget", "between", [40, 600]), {"alice", "bob"}),
    (("field:budget", "is_empty", None), {"cleo"}),
    (("field:plan", "is", "pro"), {"alice"}),
    (("field:plan", "is_not", "pro"), {"bob", "cleo"}),
    (("field:plan", "in", ["pro", "basic"]), {"alice", "bob"}),
    (("field:interests", "has", "café"), {"alice"}),
    (("field:interests", "has", "tennis"), {"bob"}),
    (("field:interests", "has_not", "golf"), {"bob", "cleo"}),
    (("field:birthday", "lt", "2000-01-01"), {"alice"}),
    (("field:birthday", "eq", "2001-12-24"), {"bob"}),
    (("field:birthday", "between", ["1990-05-01", "2001-12-24"]), {"alice", "bob"}),
    (("field:birthday", "more_than_days_ago", 365), {"alice", "bob"}),
    (("field:newsletter", "is", True), {"alice"}),
    (("field:newsletter", "is", False), {"bob"}),
    (("field:hobby", "contains", "100%"), {"alice"}),
    (("field:hobby", "contains", "1_0"), set()),
    (("field:hobby", "is_set", None), {"alice"}),
]


@pytest.fixture
def world(app):
    return build_world(app.extensions["sigdesk"].database)


@pytest.mark.parametrize("common_rows", [2000, 0], ids=["few-match-IN", "many-match-probe"])
def test_each_field_and_operator_finds_exactly_the_contacts_that_pass(app, world, monkeypatch, common_rows):
    monkeypatch.setattr("sigdesk.segments.filters.COMMON_ROWS", common_rows)
    names = {contact_id: name for name, contact_id in world.ids.items()}
    wrong = []
    with app.extensions["sigdesk"].database.session() as session:
        for (field, op, value), expected in CASES:
            definition = {"conditions": [{"field": field, "op": op, "value": value}]}
            found = {names[item.id] for item in find_contacts(session, definition, limit=50).items}
            if found != expected or count_contacts(session, definition) != len(expected):
                wrong.append((field, op, value, sorted(found), sorted(expected)))
    assert not wrong, wrong


def test_the_owner_filter_takes_a_user_id(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        mine = {"conditions": [{"field": "owner", "op": "is", "value": world.owner_id}]}
        others = {"conditions": [{"field": "owner", "op": "is_not", "value": world.owner_id}]}
        assert [item.id for item in find_contacts(session, mine).items] == [world.ids["alice"]]
        assert count_contacts(session, others) == 2


def test_all_needs_every_condition_and_any_just_one(app, world):
    conditions = [
        {"field": "tag", "op": "has", "value": "VIP"},
        {"field": "field:budget", "op": "lt", "value": 100},
    ]
    with app.extensions["sigdesk"].database.session() as session:
        assert count_contacts(session, {"match": "all", "conditions": conditions}) == 0
        assert count_contacts(session, {"match": "any", "conditions": conditions}) == 2
        assert count_contacts(session, {"conditions": []}) == 3
        assert count_contacts(session, None, q="beta") == 1


def test_a_search_narrows_a_filter(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        everyone = {"conditions": [{"field": "name", "op": "is_set"}]}
        assert [item.id for item in find_contacts(session, everyone, q="+33 6 12 34 56 78").items] == [world.ids["bob"]]


BAD = [
    ({"match": "some"}, "match"),
    ({"conditions": [{"field": "name", "op": "is", "value": "x", "extra": 1}]}, "conditions[0].extra"),
    ({"conditions": [{"field": "shoe_size", "op": "is", "value": "x"}]}, "conditions[0].field"),
    ({"conditions": [{"field": "name", "op": "is"}, {"field": "name", "op": "gt", "value": 1}]}, "conditions[0].value"),
    (
        {"conditions": [{"field": "name", "op": "is", "value": "a"}, {"field": "name", "op": "gt", "value": 1}]},
        "conditions[1].op",
    ),
    (
        {
            "conditions": [
                {"field": "email", "op": "is", "value": "a"},
                {"field": "x", "op": "is"},
                {"field": "created_at", "op": "gt", "value": "soon"},
            ]
        },
        "conditions[1].field",
    ),
    ({"conditions": [{"field": "created_at", "op": "gt", "value": "2026-13-01"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "created_at", "op": "gt", "value": "2026-01-01T10:00:00"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "created_at", "op": "within_last_days", "value": -1}]}, "conditions[0].value"),
    (
        {"conditions": [{"field": "created_at", "op": "between", "value": ["2026-02-01", "2026-01-01"]}]},
        "conditions[0].value",
    ),
    ({"conditions": [{"field": "field:budget", "op": "gt", "value": "many"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "field:budget", "op": "gt", "value": True}]}, "conditions[0].value"),
    ({"conditions": [{"field": "field:budget", "op": "contains", "value": 1}]}, "conditions[0].op"),
    ({"conditions": [{"field": "field:newsletter", "op": "is", "value": "yes"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "consent", "op": "is", "value": "maybe"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "owner", "op": "is", "value": "someone"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "stage", "op": "in", "value": []}]}, "conditions[0].value"),
    ({"conditions": [{"field": "phone", "op": "is", "value": "call me"}]}, "conditions[0].value"),
]


@pytest.mark.parametrize(("definition", "field"), BAD)
def test_a_definition_it_cannot_use_is_refused_naming_the_condition(app, world, definition, field):
    with app.extensions["sigdesk"].database.session() as session:
        with pytest.raises(Refused) as refused:
            compile_filter(session, definition)
    assert refused.value.field == field and refused.value.status == 422


def test_a_condition_on_something_deleted_says_to_edit_the_segment(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        for condition, message in [
            ({"field": "field:gone", "op": "is_set"}, "The custom field 'gone' no longer exists; edit the segment"),
            ({"field": "tag", "op": "has", "value": "Gold"}, "The tag 'Gold' no longer exists; edit the segment"),
            ({"field": "stage", "op": "is", "value": "Won"}, "The stage 'Won' no longer exists; edit the segment"),
            ({"field": "label", "op": "has", "value": "Late"}, "The label 'Late' no longer exists; edit the segment"),
        ]:
            with pytest.raises(Refused, match=message):
                compile_filter(session, {"conditions": [condition]})


def test_lead_score_works_only_once_contacts_keep_one(app, world):
    from sigdesk.models import Contact

    definition = {"conditions": [{"field": "lead_score", "op": "gt", "value": 10}]}
    with app.extensions["sigdesk"].database.session() as session:
        if hasattr(Contact, "lead_score"):
            assert count_contacts(session, definition) >= 0
        else:
            with pytest.raises(Refused) as refused:
                compile_filter(session, definition)
            assert refused.value.field == "conditions[0].field"


def test_definitions_read_from_json_text_and_refuse_bad_json():
    assert parse_definition('{"match": "any", "conditions": []}').match == "any"
    with pytest.raises(Refused) as refused:
        parse_definition("{nope")
    assert refused.value.field == "filter"


def test_segments_using_a_custom_field_are_named_for_its_delete_confirmation(app, world):
    from sigdesk.actor import Actor
    from sigdesk.segments.commands import create_segment

    with app.extensions["sigdesk"].database.session() as session:
        system = Actor.system("cli")
        create_segment(
            session, system, "Big budgets", {"conditions": [{"field": "field:budget", "op": "gt", "value": 1}]}
        )
        create_segment(session, system, "VIPs", {"conditions": [{"field": "tag", "op": "has", "value": "VIP"}]})
        session.commit()
        assert segments_using_field(session, "budget") == ["Big budgets"]
        assert segments_using_field(session, "plan") == []
        assert session.query(ContactField).count() == 6
