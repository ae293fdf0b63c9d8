"""Custom periods stay within days SigDesk can place on the clock: from 1970-01-01 to a year ahead; a day outside
is a 400 naming the field, never an overflow (a 500)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sigdesk.analytics.services import EARLIEST_DAY, period
from sigdesk.errors import UserError

pytestmark = pytest.mark.database

TODAY = date(2026, 12, 7)


def _get(auth, start: str, end: str):
    return auth.client.get(
        f"/analytics/charts/revenue?period=custom&start={start}&end={end}", headers={"Accept": "application/json"}
    )


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("0001-01-02", "0001-01-03", "start"),
        ("1969-12-31", "1970-01-05", "start"),
        ("9999-12-30", "9999-12-31", "start"),
        ("2026-12-01", "9999-12-31", "end"),
    ],
)
def test_a_custom_period_outside_1970_to_a_year_ahead_is_refused_naming_the_field(auth, owner, start, end, field):
    for path in ("/analytics/charts/revenue", "/analytics/charts/contacts/csv", "/analytics/"):
        response = auth.client.get(
            f"{path}?period=custom&start={start}&end={end}", headers={"Accept": "application/json"}
        )
        assert response.status_code == 400, (path, response.status_code)
        assert response.get_json()["field"] == field


def test_the_first_day_and_a_year_ahead_are_still_accepted(auth, owner):
    assert _get(auth, "1970-01-01", "1970-01-31").status_code == 200
    ahead = date.today() + timedelta(days=360)
    assert _get(auth, ahead.isoformat(), ahead.isoformat()).status_code == 200


def test_the_bounds_follow_today():
    assert period(TODAY, "custom", "2027-12-07", "2027-12-07")[0] == date(2027, 12, 7)
    with pytest.raises(UserError) as refused:
        period(TODAY, "custom", "2027-12-08", "2027-12-08")
    assert refused.value.field == "start" and "2027-12-07" in str(refused.value)
    assert period(TODAY, "custom", EARLIEST_DAY.isoformat(), "1970-01-02")[2] < EARLIEST_DAY


def test_a_refused_period_on_the_page_keeps_the_typed_days_and_says_why_without_loading_charts(auth, owner):
    response = auth.client.get("/analytics/?period=custom&start=2026-12-05&end=2026-12-01")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'id="analytics-period-error"' in page
    assert "on or after" in page and 'value="2026-12-05"' in page and 'value="2026-12-01"' in page
    assert "analytics-chart" not in page, "no chart asks for days that were refused"
