"""An agent's own sales figures count the orders they created and the orders whose first step away from "new"
they made (a cart order arrives created by no one; the agent who confirms it made the sale), never someone
else's."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.models import User
from sigdesk.sales.commands import set_order_status
from sigdesk.settings import services as settings
from tests import factories

pytestmark = pytest.mark.database

MARCH = "period=custom&start=2026-03-01&end=2026-03-07"


def _order(session, who, on: date, minor: int, **fields):
    return factories.order(
        session,
        who,
        on,
        [(None, 1, minor)],
        ordered_at=datetime(on.year, on.month, on.day, 12, tzinfo=timezone.utc),
        **fields,
    )


def test_an_agent_is_credited_with_the_cart_orders_they_confirmed_and_those_they_created(app, auth, owner):
    agent = auth.create_user("agent")
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "sales.currency", "EUR")
        me = session.scalar(select(User).where(User.email == agent.email))
        other = factories.user(session, "agent")
        ana, ben = factories.contact(session, name="Ana"), factories.contact(session, name="Ben")
        mine = _order(session, ana, date(2026, 3, 2), 1000, created_by=me.id)
        confirmed = _order(session, ben, date(2026, 3, 3), 300, status="new", source="cart")
        theirs = _order(session, ben, date(2026, 3, 4), 700, status="new", source="cart")
        untouched = _order(session, ana, date(2026, 3, 5), 5000, status="new", source="cart")
        session.commit()
        set_order_status(session, Actor(me, "web"), confirmed.id, "confirmed")
        set_order_status(session, Actor(other, "web"), theirs.id, "confirmed")
        set_order_status(session, Actor(other, "web"), confirmed.id, "new")
        set_order_status(session, Actor(other, "web"), confirmed.id, "paid")  # later steps credit no one new
        set_order_status(session, Actor(me, "web"), theirs.id, "paid")
        session.commit()
        assert untouched.created_by is None and mine.created_by == me.id

    def chart(key: str) -> dict:
        response = auth.client.get(f"/analytics/charts/{key}?{MARCH}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    assert chart("revenue")["totals"]["orders"] == 4
    auth.logout()
    auth.login(agent)
    revenue = chart("revenue")
    assert revenue["everyone"] is False
    assert revenue["totals"] == {"revenue": 13.0, "orders": 2, "average_order_value": 6.5}
    assert {row[1] for row in chart("top_customers")["rows"]} == {"Ana", "Ben"}
    assert chart("customers")["totals"] == {"new": 2, "returning": 0}
