"""Defining custom contact fields: admins only, each rule refused naming its part, patterns checked when
defined (invalid, too long or too slow to check), key and kind fixed once values exist, a choice in use
kept, deleting counts and audits; every change is audited and announced."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.custom_fields import commands, services
from sigdesk.errors import UserError
from sigdesk.models import ContactFieldValue
from tests import factories
from tests.commanding import audit, events
from tests.custom_fields.helpers import actor, field

pytestmark = pytest.mark.database


def test_an_admin_defines_fields_which_read_back_in_order(app):
    with app.extensions["sigdesk"].database.session() as session:
        admin = actor(session)
        commands.define_field(session, admin, "Customer number", "text", required=True, pattern=r"C-\d{4}")
        commands.define_field(session, admin, "Plan", "choice", options=["Free", "Pro"])
        commands.define_field(session, admin, "Budget", "currency", currency="eur", position=1)
        session.commit()
        found = services.definitions(session)
    assert [(item.key, item.position) for item in found] == [("budget", 1), ("customer_number", 2), ("plan", 3)]
    assert found[0].currency == "EUR" and found[2].options == ["Free", "Pro"]
    assert found[1].required is True and found[1].pattern == r"C-\d{4}"
    assert [entry.detail["key"] for entry in audit(app, "contact_field.define")] == [
        "customer_number",
        "plan",
        "budget",
    ]
    assert [event["key"] for event in events(app, "contact_field.defined")] == ["customer_number", "plan", "budget"]


@pytest.mark.parametrize(
    ("label", "kind", "parts", "field"),
    [
        ("", "text", {}, "label"),
        ("x" * 65, "text", {}, "label"),
        ("Plan", "colour", {}, "kind"),
        ("Plan", "text", {"key": "Has Spaces"}, "key"),
        ("Plan", "text", {"key": "email"}, "key"),
        ("Plan", "choice", {}, "options"),
        ("Plan", "choice", {"options": ["A", "a"]}, "options"),
        ("Plan", "choices", {"options": ["A, B"]}, "options"),
        ("Plan", "choice", {"options": ["A;B"]}, "options"),
        ("Plan", "text", {"options": ["A"]}, "options"),
        ("Budget", "currency", {}, "currency"),
        ("Budget", "currency", {"currency": "EURO"}, "currency"),
        ("Budget", "number", {"currency": "EUR"}, "currency"),
        ("Code", "text", {"pattern": "([a-z"}, "pattern"),
        ("Code", "text", {"pattern": "a" * 201}, "pattern"),
        ("Code", "text", {"pattern": "(a+)+$"}, "pattern"),
        ("Code", "text", {"pattern": r"(\w*)*x"}, "pattern"),
        ("Code", "text", {"pattern": r"(a)\1"}, "pattern"),
        ("Code", "text", {"pattern": r"(ab|a)*c"}, "pattern"),
        ("Code", "text", {"pattern": r"((a+))+"}, "pattern"),
        ("Code", "text", {"pattern": r"\d*" * 7}, "pattern"),
        ("Code", "number", {"pattern": r"\d+"}, "pattern"),
    ],
)
def test_a_bad_definition_is_refused_naming_its_part(app, label, kind, parts, field):
    with app.extensions["sigdesk"].database.session() as session:
        with pytest.raises(UserError) as refused:
            commands.define_field(session, actor(session), label, kind, **parts)
    assert refused.value.field == field


def test_a_key_is_taken_once(app):
    with app.extensions["sigdesk"].database.session() as session:
        field(session, "Plan", "text")
        with pytest.raises(UserError) as refused:
            field(session, "Plan (again)", "text", key="plan")
    assert (refused.value.status, refused.value.field) == (409, "key")


def test_agents_may_not_define_change_or_delete_fields(app):
    with app.extensions["sigdesk"].database.session() as session:
        plan = field(session, "Plan", "text")
        agent = actor(session, "agent")
        for attempt in (
            lambda: commands.define_field(session, agent, "Other", "text"),
            lambda: commands.update_field(session, agent, plan.id, label="New"),
            lambda: commands.delete_field(session, agent, plan.id),
        ):
            with pytest.raises(UserError) as refused:
                attempt()
            assert refused.value.status == 403


def _give(session, contact_id: int, values: dict) -> None:
    services.set_values(session, contact_id, values)


def test_key_and_kind_change_only_while_no_contact_has_a_value(app):
    with app.extensions["sigdesk"].database.session() as session:
        admin = actor(session)
        plan = field(session, "Plan", "text")
        commands.update_field(session, admin, plan.id, key="tier", kind="choice", options=["Free", "Pro"])
        customer = factories.contact(session)
        _give(session, customer.id, {"tier": "pro"})
        for part in ({"key": "level"}, {"kind": "text"}):
            with pytest.raises(UserError) as refused:
                commands.update_field(session, admin, plan.id, **part)
            assert refused.value.status == 409 and "1 contact(s) have a value" in str(refused.value)
            assert refused.value.field == next(iter(part))
        commands.update_field(session, admin, plan.id, label="Tier", required=True, options=["Free", "Pro", "Max"])
        with pytest.raises(UserError) as refused:
            commands.update_field(session, admin, plan.id, options=["Free", "Max"])
        assert (refused.value.status, refused.value.field) == (409, "options") and "'Pro'" in str(refused.value)
        session.commit()
        assert services.definitions(session)[0].options == ["Free", "Pro", "Max"]
    changes = [entry.detail for entry in audit(app, "contact_field.update")]
    assert changes[0]["key"] == {"from": "plan", "to": "tier"} and changes[0]["kind"]["to"] == "choice"
    assert changes[1]["label"] == {"from": "Plan", "to": "Tier"} and changes[1]["required"]["to"] is True
    assert [tuple(event["changes"]) for event in events(app, "contact_field.changed")] == [
        ("key", "kind", "options"),
        ("label", "options", "required"),
    ]


def test_an_unchanged_save_leaves_no_trail(app):
    with app.extensions["sigdesk"].database.session() as session:
        plan = field(session, "Plan", "choice", options=["A", "B"])
        commands.update_field(session, actor(session), plan.id, label="Plan", options=["A", "B"], required=False)
        session.commit()
    assert audit(app, "contact_field.update") == []


def test_moving_a_field_renumbers_the_others(app):
    with app.extensions["sigdesk"].database.session() as session:
        first, second, third = (field(session, name, "text") for name in ("One", "Two", "Three"))
        commands.update_field(session, actor(session), third.id, position=1)
        assert [item.key for item in services.definitions(session)] == ["three", "one", "two"]
        with pytest.raises(UserError) as refused:
            commands.update_field(session, actor(session), first.id, position=9)
        assert refused.value.field == "position"


def test_deleting_a_field_takes_its_values_and_says_how_many(app):
    with app.extensions["sigdesk"].database.session() as session:
        plan, _other = field(session, "Plan", "text"), field(session, "Other", "text")
        for customer in (factories.contact(session), factories.contact(session)):
            _give(session, customer.id, {"plan": "Gold", "other": "x"})
        row, count, users = commands.deletion_impact(session, plan.id)
        assert (row.key, count, users) == ("plan", 2, [])
        assert commands.delete_field(session, Actor(factories.user(session, "admin"), "web"), plan.id) == 2
        session.commit()
        left = session.scalar(select(func.count()).select_from(ContactFieldValue))
        assert left == 2 and [item.key for item in services.definitions(session)] == ["other"]
        assert services.definitions(session)[0].position == 1
    [entry] = audit(app, "contact_field.delete")
    assert entry.detail == {"key": "plan", "label": "Plan", "values": 2, "referenced_by": []}
    assert entry.channel == "web"
    assert events(app, "contact_field.deleted") == [{"field_id": plan.id, "key": "plan", "values": 2}]


def test_the_delete_confirmation_names_what_other_features_register_as_using_the_field(app):
    def segments(session, key):
        return ["Big spenders"] if key == "budget" else []

    services.register_field_users(segments)
    try:
        with app.extensions["sigdesk"].database.session() as session:
            budget = field(session, "Budget", "currency", currency="EUR")
            assert commands.deletion_impact(session, budget.id)[2] == ["Big spenders"]
    finally:
        services._FIELD_USERS.remove(segments)
