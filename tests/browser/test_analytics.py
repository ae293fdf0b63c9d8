"""The Analytics dashboard in Chromium: every card loads and draws (uPlot canvases for time series, tables for
rankings, the heatmap), the charts redraw in the dark theme, and the console stays clean."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from sigdesk.analytics.rollups import rebuild
from sigdesk.models import User
from sigdesk.settings import services as settings
from tests import factories
from tests.browser.conftest import Browse
from tests.browser.test_auth_flow import OWNER_EMAIL, set_up_owner

pytestmark = pytest.mark.browser


def _history(app) -> None:
    """A few days of orders and one answered conversation, dated in the last week."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with app.extensions["sigdesk"].database.session() as session:
        owner_id = session.scalar(select(User.id).where(User.email == OWNER_EMAIL))
        settings.set_text(session, app.extensions["sigdesk"].cipher, "sales.currency", "EUR")
        water = factories.product(session, sku="WATER", name="Water 20 L", price_minor=650)
        for days in range(6):
            moment = now - timedelta(days=days)
            who = factories.contact(session, name=f"Customer {days}")
            factories.order(session, who, moment.date(), [(water, 1 + days % 2, 650)], ordered_at=moment)
        where = factories.conversation(session, assignee_id=owner_id)
        factories.message(session, where, "in", timestamp=now - timedelta(hours=3))
        factories.message(
            session,
            where,
            "out",
            timestamp=now - timedelta(hours=2),
            created_at=now - timedelta(hours=2),
            author_id=owner_id,
        )
        rebuild(session)


def test_the_dashboard_draws_every_chart_in_both_themes_without_console_errors(browse: Browse, app):
    page = browse.page
    set_up_owner(browse)
    _history(app)
    with page.expect_navigation():
        page.click("#nav-analytics")
    cards = page.locator(".analytics-chart")
    count = cards.count()
    assert count >= 12
    page.wait_for_function(
        "n => document.querySelectorAll('.analytics-chart[data-loaded=true]').length === n", arg=count
    )
    assert page.locator("#chart-revenue canvas").count() >= 1
    assert page.locator("#chart-revenue [data-total=orders] strong").inner_text() == "6"
    assert page.locator("#chart-top_products td").first.inner_text() == "WATER"
    assert page.locator("#chart-heatmap .analytics-heatmap td").count() == 7 * 24
    csv = page.locator("#chart-team [data-csv-link]").get_attribute("href")
    assert csv.startswith("/analytics/charts/team/csv")
    page.select_option("#period", "7d")
    with page.expect_navigation():
        page.click("#analytics-period button[type=submit]")
    page.wait_for_function(
        "n => document.querySelectorAll('.analytics-chart[data-loaded=true]').length === n", arg=count
    )
    page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
    assert page.locator("#chart-messages canvas").count() >= 1
    browse.screenshot("analytics-dark")
    browse.watch.assert_clean()
