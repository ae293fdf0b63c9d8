"""A contact's custom values: written by key (unknown keys, bad values and cleared required fields refused
naming `fields.<key>`), read back in one query for many contacts, filtered and sorted in contact queries."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from sigdesk.custom_fields import services
from sigdesk.errors import UserError
from sigdesk.models import Contact
from tests import factories
from tests.custom_fields.helpers import field

pytestmark = pytest.mark.database


@pytest.fixture
def fields(app):
    with app.extensions["sigdesk"].database.session() as session:
        field(session, "Plan", "choice", options=["Free", "Pro"], required=True)
        field(session, "Budget", "currency", currency="EUR")
        field(session, "Birthday", "date")
        field(session, "Newsletter", "boolean")
        field(session, "Interests", "choices", options=["Shoes", "Bags", "Hats"])
        session.commit()


def test_values_are_written_changed_cleared_and_read_back(app, fields):
    with app.extensions["sigdesk"].database.session() as session:
        customer = factories.contact(session)
        changed = services.set_values(
            session, customer.id, {"plan": "pro", "budget": 99.5, "newsletter": False}, creating=True
        )
        assert changed == {"plan": (None, "Pro"), "budget": (None, 99.5), "newsletter": (None, False)}
        assert services.set_values(session, customer.id, {"plan": "Pro", "budget": 99.5}) == {}
        changed = services.set_values(session, customer.id, {"budget": None, "birthday": "1990-05-01"})
        assert changed == {"budget": (99.5, None), "birthday": (None, "1990-05-01")}
        session.commit()
        assert services.values_for(session, [customer.id, 999]) == {
            customer.id: {"plan": "Pro", "birthday": "1990-05-01", "newsletter": False},
            999: {},
        }


@pytest.mark.parametrize(
    ("given", "creating", "field"),
    [
        ({"nope": 1}, False, "fields.nope"),
        ({"budget": "lots"}, False, "fields.budget"),
        ({"plan": None}, False, "fields.plan"),
        ({"plan": ""}, False, "fields.plan"),
        ({"budget": 5}, True, "fields.plan"),
    ],
)
def test_refusals_name_the_field(app, fields, given, creating, field):
    with app.extensions["sigdesk"].database.session() as session:
        customer = factories.contact(session)
        with pytest.raises(UserError) as refused:
            services.set_values(session, customer.id, given, creating=creating)
    assert refused.value.field == field


def test_values_from_spreadsheet_cells(app, fields):
    with app.extensions["sigdesk"].database.session() as session:
        customer = factories.contact(session)
        services.set_values(
            session,
            customer.id,
            {
                "plan": "free",
                "budget": "1.234,50",
                "birthday": "01/05/1990",
                "newsletter": "ja",
                "interests": "hats; shoes",
            },
            from_text=True,
        )
        assert services.values_for(session, [customer.id])[customer.id] == {
            "plan": "Free",
            "budget": 1234.5,
            "birthday": "1990-05-01",
            "newsletter": True,
            "interests": ["Shoes", "Hats"],
        }


def test_values_for_many_contacts_is_one_query(app, fields):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        ids = []
        for number in range(5):
            customer = factories.contact(session)
            services.set_values(session, customer.id, {"plan": "Pro", "budget": number})
            ids.append(customer.id)
        session.commit()
    with database.session() as session:
        statements = []
        engine = session.get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            found = services.values_for(session, ids)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    selects = [statement for statement in statements if statement.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and [found[i]["budget"] for i in ids] == [0, 1, 2, 3, 4]


def test_contacts_are_filtered_and_sorted_by_a_field(app, fields):
    with app.extensions["sigdesk"].database.session() as session:
        rich, poor, unknown = (factories.contact(session) for _ in range(3))
        services.set_values(session, rich.id, {"budget": 1000, "interests": ["Bags", "Hats"], "plan": "Pro"})
        services.set_values(session, poor.id, {"budget": 5, "interests": ["Shoes"], "plan": "Free"})
        session.commit()
        by_key = {item.key: item for item in services.definitions(session)}

        def ids(key, operator, value=None):
            return sorted(session.scalars(select(Contact.id).where(services.condition(by_key[key], operator, value))))

        assert ids("budget", "gt", 10) == [rich.id]
        assert ids("budget", "le", 5) == [poor.id]
        assert ids("interests", "has", "hats") == [rich.id]
        assert ids("plan", "is", "free") == [poor.id]
        assert ids("plan", "is_not", "free") == sorted([rich.id, unknown.id])
        assert ids("budget", "unset") == [unknown.id]
        assert ids("budget", "set") == sorted([rich.id, poor.id])
        ordered = session.scalars(
            select(Contact.id)
            .where(Contact.id.in_([rich.id, poor.id]))
            .order_by(services.sort_value(by_key["budget"]).desc())
        ).all()
        assert ordered == [rich.id, poor.id]
        with pytest.raises(UserError):
            services.condition(by_key["plan"], "gt", "Free")
