"""GET /api/v1/reorders: every customer with an order dated before as_of, with the probability of an order in
[as_of, as_of + horizon_days), the expected orders and the next order's day, from the orders before as_of only;
cancelled and returned orders never count; a customer with one order is labelled; bad input is a 4xx naming
the field."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from sigdesk.models import Order, PredictionRefresh
from sigdesk.predictions import services
from sigdesk.predictions.model import ONE_ORDER
from sigdesk.settings import services as settings
from tests import factories
from tests.lifecycle.helpers import Api
from tests.predictions.test_services import TODAY, at, session_of, shop

pytestmark = pytest.mark.database


def everyone(api: Api, **query):
    response = api.call("GET", "/reorders?" + "&".join(f"{key}={value}" for key, value in query.items()))
    assert response.status_code == 200, response.json
    return response.json


def test_a_past_day_counts_only_the_orders_before_it(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY)
    api = Api.of(app, "agent")
    page = everyone(api, as_of=TODAY.isoformat(), horizon_days=30, limit="all")
    ids = [item["contact_id"] for item in page["items"]]
    assert ids == sorted(who.id for who in [*people["regulars"], people["once"]])
    assert people["cancelled"].id not in ids and people["today"].id not in ids
    regular = page["items"][0]
    assert regular["phone"] == "491700000000" and 0.5 < regular["probability"] <= 1
    assert regular["expected_orders"] > 0.5 and regular["next_order_at"] >= TODAY.isoformat()
    once = next(item for item in page["items"] if item["contact_id"] == people["once"].id)
    assert once["next_order_at"] is None and once["reason"] == ONE_ORDER
    assert page["as_of"] == TODAY.isoformat() and page["horizon_days"] == 30 and page["next_cursor"] is None

    earlier = TODAY - timedelta(days=60)
    past = everyone(api, as_of=earlier.isoformat(), horizon_days=14, limit="all")
    assert [item["contact_id"] for item in past["items"]] == sorted(who.id for who in people["regulars"])
    for item in past["items"]:
        assert date.fromisoformat(item["next_order_at"]) >= earlier


def test_a_product_keeps_those_who_bought_it_with_its_own_reorder_day(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY)
    api = Api.of(app, "agent")
    water = everyone(api, horizon_days=30, product="WATER-20L", limit="all")
    assert [item["contact_id"] for item in water["items"]] == [who.id for who in people["regulars"]]
    bread = everyone(api, horizon_days=30, product="BREAD", limit="all")
    assert people["once"].id in [item["contact_id"] for item in bread["items"]]


def test_today_serves_the_stored_forecasts_when_they_are_current_and_the_same_as_computing_them(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        shop(session, TODAY)
    api = Api.of(app, "agent")
    computed = everyone(api, horizon_days=30, limit="all")
    computed_water = everyone(api, horizon_days=30, product="WATER-20L", limit="all")
    with session_of(app) as session:
        services.refresh_now(session, "cli")
    calls = []
    monkeypatch.setattr(services, "_computed_reorders", lambda *args: calls.append(args))
    stored = everyone(api, horizon_days=30, limit="all")
    stored_water = everyone(api, horizon_days=30, product="WATER-20L", limit="all")
    assert calls == []
    assert [(item["contact_id"], item["next_order_at"]) for item in stored_water["items"]] == [
        (item["contact_id"], item["next_order_at"]) for item in computed_water["items"]
    ]
    assert [item["contact_id"] for item in stored["items"]] == [item["contact_id"] for item in computed["items"]]
    for mine, theirs in zip(stored["items"], computed["items"]):
        assert mine["probability"] == pytest.approx(theirs["probability"], abs=1e-6)
        assert mine["next_order_at"] == theirs["next_order_at"]
    with session_of(app) as session:
        services.request_refresh(session, "orders")
        session.commit()
    monkeypatch.undo()
    at(TODAY, monkeypatch)
    assert everyone(api, horizon_days=30, limit="all")["items"] == computed["items"]


def test_pages_follow_each_other_by_contact_id(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY)
    api = Api.of(app, "agent")
    seen, cursor = [], ""
    while True:
        page = everyone(api, horizon_days=7, limit=3, cursor=cursor)
        seen += [item["contact_id"] for item in page["items"]]
        assert len(page["items"]) <= 3
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == sorted(who.id for who in [*people["regulars"], people["once"]])


def test_no_orders_answers_an_empty_list(app):
    assert everyone(Api.of(app, "agent"), horizon_days=30)["items"] == []


BAD = [
    ("horizon_days=30&as_of=2026-13-01", 400, "as_of"),
    ("horizon_days=30&as_of=7.12.2026", 400, "as_of"),
    ("horizon_days=30&as_of=2999-01-01", 422, "as_of"),
    ("as_of=2026-01-01", 400, "horizon_days"),
    ("horizon_days=0", 400, "horizon_days"),
    ("horizon_days=366", 400, "horizon_days"),
    ("horizon_days=thirty", 400, "horizon_days"),
    ("horizon_days=30&product=NOPE", 422, "product"),
    ("horizon_days=30&limit=0", 400, "limit"),
    ("horizon_days=30&limit=every", 400, "limit"),
    ("horizon_days=30&cursor=%21%21", 400, "cursor"),
]


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        shop(session, TODAY, regulars=1)
    api = Api.of(app, "agent")
    for query, status, field in BAD:
        refused = api.call("GET", f"/reorders?{query}")
        assert (query, refused.status_code, refused.json["field"]) == (query, status, field), refused.json
        assert "Value error" not in refused.json["error"], "people read the validator's sentence, not pydantic's"
    with session_of(app) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 13
        assert session.scalar(select(func.count()).select_from(PredictionRefresh)) == 0


def test_paging_through_a_past_day_fits_the_model_once_and_a_new_order_is_seen_at_the_next_page(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY)
    with app.extensions["sigdesk"].database.session(write=False) as session:  # the requests' engine
        fits = services.fit_cache(session)
    earlier = (TODAY - timedelta(days=30)).isoformat()
    api = Api.of(app, "agent")
    before = fits.fits
    first = everyone(api, as_of=earlier, horizon_days=30, limit=2)
    second = everyone(api, as_of=earlier, horizon_days=7, limit=2, cursor=first["next_cursor"])
    assert fits.fits == before + 1
    assert len(first["items"]) == len(second["items"]) == 2
    assert first["items"][-1]["contact_id"] < second["items"][0]["contact_id"]
    everything = everyone(api, as_of=earlier, horizon_days=30, limit="all")
    assert everything["items"][:2] == first["items"] and fits.fits == before + 1

    everyone(api, as_of=(TODAY - timedelta(days=31)).isoformat(), horizon_days=30, limit=2)
    assert fits.fits == before + 2
    with session_of(app) as session:
        newcomer = factories.contact(session, wa_id="491700000999")
        factories.order(session, newcomer, TODAY - timedelta(days=40), [(None, 1, 100)])
        session.commit()
    again = everyone(api, as_of=earlier, horizon_days=30, limit="all")
    assert fits.fits == before + 3
    assert newcomer.id in [item["contact_id"] for item in again["items"]]
    assert people["today"].id not in [item["contact_id"] for item in again["items"]]


def test_the_owners_at_risk_margin_reads_the_same_in_stored_and_computed_forecasts(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY, regulars=2)
        late = factories.contact(session)
        for k in range(8):
            factories.order(session, late, TODAY - timedelta(days=60 + 14 * k), [(people["water"], 1, 500)])
        session.commit()
        late_id = late.id
    api = Api.of(app, "agent")

    def at_risk(**query) -> set[int]:
        found = everyone(api, limit="all", **query)["items"]
        return {item["contact_id"] for item in found if item["at_risk"]}

    for margin, expected in (("0", {late_id}), ("90", set())):
        with session_of(app) as session:
            settings.set_text(session, app.extensions["sigdesk"].cipher, services.MARGIN, margin)
            session.commit()
            services.refresh_now(session, "cli")
        assert at_risk(horizon_days=30) == expected  # stored
        assert at_risk(horizon_days=14) == expected  # computed: no stored 14-day horizon
