"""Analytics over real requests: figures on small known data, the previous period, CSV downloads, who sees what."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from sigdesk.analytics.rollups import rebuild
from sigdesk.models import AuditEvent, User
from sigdesk.settings import services as settings
from tests import factories

pytestmark = pytest.mark.database

MARCH = "period=custom&start=2026-03-01&end=2026-03-07"


def _db(app):
    return app.extensions["sigdesk"].database


def _set(app, session, key: str, value: str) -> None:
    settings.set_text(session, app.extensions["sigdesk"].cipher, key, value)


def _chart(auth, key: str, query: str = MARCH) -> dict:
    response = auth.client.get(f"/analytics/charts/{key}?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _user_id(app, email: str) -> int:
    with _db(app).session() as session:
        return session.scalar(select(User.id).where(User.email == email))


def _order(session, who, on: date, lines, **fields):
    return factories.order(
        session, who, on, lines, ordered_at=datetime(on.year, on.month, on.day, 12, tzinfo=timezone.utc), **fields
    )


def _sales(app, agent_id: int | None = None) -> None:
    """Two customers in the first week of March 2026: Ana returning (bought in February), Ben new;
    a cancelled order and a dollar order that must not be summed."""
    with _db(app).session() as session:
        _set(app, session, "sales.currency", "EUR")
        water = factories.product(session, sku="WATER", name="Water 20 L", price_minor=500)
        bread = factories.product(session, sku="BREAD", name="Bread", price_minor=300)
        ana = factories.contact(session, name='=HYPERLINK("http://x")')
        ben = factories.contact(session, name="Ben")
        _order(session, ana, date(2026, 2, 10), [(water, 1, 500)])
        _order(session, ana, date(2026, 2, 25), [(water, 1, 700)])
        _order(session, ana, date(2026, 3, 2), [(water, 2, 500)], created_by=agent_id)
        _order(session, ana, date(2026, 3, 3), [(water, 1, 999900)], status="cancelled")
        _order(session, ben, date(2026, 3, 3), [(bread, 1, 300)])
        _order(session, ben, date(2026, 3, 4), [(bread, 1, 300)], currency="USD")


def test_revenue_orders_and_average_compare_with_the_previous_period_without_cancelled_orders(app, auth, owner):
    _sales(app)
    data = _chart(auth, "revenue")
    assert data["totals"] == {"revenue": 13.0, "orders": 2, "average_order_value": 6.5}
    assert data["previous"] == {"revenue": 7.0, "orders": 1, "average_order_value": 7.0}
    days = {row[0]: row[1:3] for row in data["rows"]}
    assert days["2026-03-02"] == [10.0, 1] and days["2026-03-03"] == [3.0, 1] and days["2026-03-05"] == [0, 0]
    assert data["rows"][3][3:] == [7.0, 1]  # 2026-03-04 lines up with 2026-02-25, the previous period's 4th day
    assert any("USD" in note for note in data["notes"])
    weekly = _chart(auth, "revenue", MARCH + "&bucket=week")
    assert [row[0] for row in weekly["rows"]] == ["2026-02-23", "2026-03-02"]
    assert sum(row[1] for row in weekly["rows"]) == 13.0


def test_top_products_top_customers_and_new_against_returning(app, auth, owner):
    _sales(app)
    products = _chart(auth, "top_products")
    assert [(row[0], row[1], row[2], row[3]) for row in products["rows"]] == [
        ("WATER", "Water 20 L", 2.0, 10.0),
        ("BREAD", "Bread", 1.0, 3.0),
    ]
    customers = _chart(auth, "top_customers")
    assert [row[2:] for row in customers["rows"]] == [[10.0, 1], [3.0, 1]]
    assert _chart(auth, "customers")["totals"] == {"new": 1, "returning": 1}


def test_every_chart_downloads_its_table_as_csv_with_formulas_escaped(app, auth, owner):
    _sales(app)
    response = auth.client.get(f"/analytics/charts/top_customers/csv?{MARCH}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="top_customers-2026-03-01-2026-03-07.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Contact id", "Customer", "Revenue (EUR)", "Orders"]
    assert rows[1][1] == '\'=HYPERLINK("http://x")' and rows[1][2] == "10.0"
    for key in ("revenue", "customers", "conversations", "response_times", "messages", "heatmap", "team"):
        assert auth.client.get(f"/analytics/charts/{key}/csv?{MARCH}").status_code == 200
    for key in ("contacts", "funnel", "consent"):
        assert auth.client.get(f"/analytics/charts/{key}/csv?{MARCH}").status_code == 200


def _thread(app, agent_id: int, zone: str = "America/New_York") -> None:
    """One customer message late on Sunday 1 March in New York (03:30 UTC on the 2nd), answered ten minutes
    later by the agent, resolved an hour after it came."""
    with _db(app).session() as session:
        _set(app, session, "general.timezone", zone)
        where = factories.conversation(session, assignee_id=agent_id)
        factories.message(session, where, "in", timestamp=datetime(2026, 3, 2, 3, 30, tzinfo=timezone.utc))
        factories.message(
            session,
            where,
            "out",
            timestamp=datetime(2026, 3, 2, 3, 40, tzinfo=timezone.utc),
            created_at=datetime(2026, 3, 2, 3, 40, tzinfo=timezone.utc),
            author_id=agent_id,
        )
        session.add(
            AuditEvent(
                at=datetime(2026, 3, 2, 4, 30, tzinfo=timezone.utc),
                action="conversation.status",
                target=f"conversation:{where.id}",
                detail='{"from": "open", "to": "resolved"}',
                actor_id=agent_id,
                actor_email="a@example.com",
                channel="web",
            )
        )
        session.flush()
        rebuild(session)


def test_conversation_figures_count_days_and_hours_on_the_business_clock(app, auth, owner):
    _thread(app, _user_id(app, owner.email))
    sunday = _chart(auth, "messages", "period=custom&start=2026-03-01&end=2026-03-01")
    assert sunday["totals"] == {"in": 1, "out": 1}  # 03:30 and 03:40 UTC on the 2nd are Sunday evening there
    monday = _chart(auth, "messages", "period=custom&start=2026-03-02&end=2026-03-02")
    assert monday["totals"] == {"in": 0, "out": 0}
    times = _chart(auth, "response_times")["totals"]
    assert times["first_response_median_s"] == 600 and times["resolution_median_s"] == 3600
    heat = _chart(auth, "heatmap")
    assert heat["rows"][6][0] == "Sun" and heat["rows"][6][1 + 22] == 1
    conversations = _chart(auth, "conversations")["totals"]
    assert conversations == {"new": 1, "resolved": 1, "open_backlog": 0}
    team = _chart(auth, "team")["rows"]
    assert team[0][1:5] == [1, 600, 600, 1] and team[0][6] == 1


def test_agents_see_only_their_own_figures_whatever_they_ask(app, auth, owner):
    agent = auth.create_user("agent")
    agent_id = _user_id(app, agent.email)
    _sales(app, agent_id)
    _thread(app, agent_id, "UTC")
    with _db(app).session() as session:
        other = factories.user(session, "agent")
        where = factories.conversation(session, assignee_id=other.id)
        factories.message(session, where, "in", timestamp=datetime(2026, 3, 3, 9, tzinfo=timezone.utc))
        factories.message(
            session, where, "out", timestamp=datetime(2026, 3, 3, 9, 5, tzinfo=timezone.utc), author_id=other.id
        )
        rebuild(session)
    assert len(_chart(auth, "team")["rows"]) == 2
    auth.logout()
    auth.login(agent)
    assert auth.client.get("/analytics/").status_code == 200
    revenue = _chart(auth, "revenue")
    assert revenue["everyone"] is False and revenue["totals"]["revenue"] == 10.0
    team = _chart(auth, "team")["rows"]
    assert [row[0] for row in team] == [agent.name]
    assert _chart(auth, "messages")["totals"] == {"in": 1, "out": 1}
    assert _chart(auth, "conversations")["totals"]["new"] == 1


def test_bad_periods_and_unknown_charts_are_refused_naming_the_field(auth, owner):
    def get(path: str):
        return auth.client.get(path, headers={"Accept": "application/json"})

    response = get("/analytics/charts/revenue?period=century")
    assert response.status_code == 400 and response.get_json()["field"] == "period"
    response = get("/analytics/charts/revenue?period=custom&start=2026-03-07&end=2026-03-01")
    assert response.status_code == 400 and response.get_json()["field"] == "end"
    response = get("/analytics/charts/revenue?period=custom&start=yesterday&end=2026-03-01")
    assert response.status_code == 400 and response.get_json()["field"] == "start"
    response = get("/analytics/charts/revenue?period=custom&start=2020-01-01&end=2026-03-01")
    assert response.status_code == 400 and response.get_json()["field"] == "start"
    assert get("/analytics/charts/nothing_here").status_code == 404
    assert get("/analytics/charts/revenue?bucket=year").status_code == 400


def test_the_page_lists_every_section_and_signed_out_visitors_are_sent_to_sign_in(app, auth, owner):
    page = auth.client.get("/analytics/?period=90d").get_data(as_text=True)
    for key in ("revenue", "top_products", "conversations", "heatmap", "team", "funnel", "consent"):
        assert f'id="chart-{key}"' in page
    assert 'id="nav-analytics"' in page
    auth.logout()
    assert auth.client.get("/analytics/").status_code in (302, 401)
    assert auth.client.get("/analytics/charts/revenue").status_code in (302, 401)


def test_other_features_plug_panels_in_and_everyone_only_panels_stay_hidden_from_agents(app, auth, owner):
    from sigdesk.analytics.services import Chart, register_panel, unregister_panel

    def accuracy(session, scope) -> Chart:
        return Chart("accuracy", "Reorder predictions", "table", ["Horizon", "Hit rate (%)"], [["30 days", 71.5]])

    register_panel("accuracy", "Reorder-prediction accuracy", accuracy, section="sales", order=90, everyone_only=True)
    try:
        assert 'id="chart-accuracy"' in auth.client.get("/analytics/").get_data(as_text=True)
        assert _chart(auth, "accuracy")["rows"] == [["30 days", 71.5]]
        agent = auth.create_user("agent")
        auth.logout()
        auth.login(agent)
        assert 'id="chart-accuracy"' not in auth.client.get("/analytics/").get_data(as_text=True)
        assert auth.client.get("/analytics/charts/accuracy", headers={"Accept": "application/json"}).status_code == 404
    finally:
        unregister_panel("accuracy")
