"""The Analytics dashboard shows how accurate the reorder predictions were (hit rate of the customers predicted
due, calibration, error of the next-order day, for the last 30 and 90 days) with its CSV table, to owners and
admins, or says plainly that there is nothing or not enough history yet."""

from __future__ import annotations

import csv
import io

import pytest

from sigdesk.predictions import services
from tests.predictions.test_services import TODAY, at, session_of, shop

pytestmark = pytest.mark.database


def _chart(auth) -> dict:
    response = auth.client.get("/analytics/charts/reorder_accuracy?period=30d")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_the_owner_sees_the_latest_accuracy_on_the_analytics_page_with_its_csv(app, auth, owner, monkeypatch):
    at(TODAY, monkeypatch)
    page = auth.client.get("/analytics/").get_data(as_text=True)
    assert 'id="chart-reorder_accuracy"' in page and "Reorder-prediction accuracy" in page
    empty = _chart(auth)
    assert empty["rows"] == [] and services.NO_ACCURACY in empty["notes"]

    with session_of(app) as session:
        shop(session, TODAY)
        services.refresh_now(session, "cli")
        stored = services.latest_accuracy(session)
    data = _chart(auth)
    assert data["kind"] == "table" and data["columns"] == ["Measure", "Last 30 days", "Last 90 days"]
    rows = {row[0]: row[1:] for row in data["rows"]}
    windows = {window["days"]: window for window in stored["windows"]}
    assert rows["Predicted as of"] == [windows[30]["cutoff"], windows[90]["cutoff"]]
    assert rows["Customers due (chance of 50 % or more)"] == [
        windows[30]["due_customers"],
        windows[90]["due_customers"],
    ]
    hit_rate = windows[30]["due_hit_rate"]
    assert rows["Due customers who ordered (%)"][0] == (None if hit_rate is None else round(100 * hit_rate, 1))
    assert "Error of the next-order day, median (days)" in rows
    assert any(label.startswith("Calibration ") for label in rows)
    assert data["totals"]["due_customers_who_ordered_within_30_days_pct"] == rows["Due customers who ordered (%)"][0]
    assert any(note.startswith("Not enough history yet.") for note in data["notes"])

    response = auth.client.get("/analytics/charts/reorder_accuracy/csv?period=30d")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == data["columns"] and [row[0] for row in table[1:]] == [row[0] for row in data["rows"]]


def test_agents_do_not_see_the_shop_wide_accuracy(app, auth, owner):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert 'id="chart-reorder_accuracy"' not in auth.client.get("/analytics/").get_data(as_text=True)
    response = auth.client.get("/analytics/charts/reorder_accuracy", headers={"Accept": "application/json"})
    assert response.status_code == 404
