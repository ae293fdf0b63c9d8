"""The sales API: admins keep the products, agents write orders and move them through their statuses, everyone
reads a contact's purchase history; the same commands as the pages, and bad input is a 4xx naming the field that
stores nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sigdesk.db import utcnow
from sigdesk.models.sales import Order, Product
from tests import factories
from tests.commanding import audit, events

pytestmark = pytest.mark.database


@pytest.fixture
def api(app):
    return app.test_client()


def token_for(app, role: str) -> dict[str, str]:
    with app.extensions["sigdesk"].database.session() as session:
        token = factories.api_token(session, factories.user(session, role))
    return {"Authorization": f"Bearer {token}"}


def counts(app) -> tuple[int, int]:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(func.count(Order.id))), session.scalar(select(func.count(Product.id)))


def test_products_and_an_order_make_a_round_trip_through_the_api(app, api, owner):
    admin, agent = token_for(app, "admin"), token_for(app, "agent")
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session, name="Rita").id
    made = api.post(
        "/api/v1/products",
        json={"sku": "WATER", "name": "Water 20 L", "price": "2.50", "currency": "EUR"},
        headers=admin,
    )
    assert made.status_code == 201, made.get_json()
    product = made.get_json()
    assert (product["price"], product["price_minor"], product["placeholder"]) == ("2.50", 250, False)
    assert api.post("/api/v1/products", json={"sku": "X", "name": "x"}, headers=agent).status_code == 403
    changed = api.patch(f"/api/v1/products/{product['id']}", json={"reorder_days": 14, "price": 3}, headers=admin)
    assert changed.get_json()["reorder_days"] == 14 and changed.get_json()["price"] == "3.00"
    assert api.get("/api/v1/products?q=wat", headers=agent).get_json()["items"][0]["sku"] == "WATER"

    created = api.post(
        "/api/v1/orders",
        json={
            "contact_id": contact_id,
            "lines": [
                {"product_id": product["id"], "quantity": 2},
                {"description": "Delivery", "quantity": 1, "unit_price": "1.50"},
            ],
            "notes": "Back door",
        },
        headers=agent,
    )
    assert created.status_code == 201, created.get_json()
    order = created.get_json()
    assert (order["number"], order["total"], order["source"], order["contact_name"]) == (1001, "7.50", "api", "Rita")
    assert [line["total"] for line in order["lines"]] == ["6.00", "1.50"]
    order_id = order["id"]

    moved = api.post(f"/api/v1/orders/{order_id}/status", json={"status": "paid", "note": "cash"}, headers=agent)
    assert [step["to_status"] for step in moved.get_json()["history"]] == ["new", "paid"]
    edited = api.patch(
        f"/api/v1/orders/{order_id}", json={"lines": [{"sku": "WATER", "quantity": "1.5"}]}, headers=agent
    )
    assert edited.get_json()["total"] == "4.50" and edited.get_json()["notes"] == "Back door"
    listed = api.get(f"/api/v1/orders?contact_id={contact_id}&status=paid", headers=agent).get_json()
    assert [item["id"] for item in listed["items"]] == [order_id]
    history = api.get(f"/api/v1/contacts/{contact_id}/purchase-history", headers=agent).get_json()
    assert history["totals"][0]["lifetime_value"] == "4.50" and history["interval_note"]
    assert api.get(f"/api/v1/orders/{order_id}", headers=agent).get_json()["status"] == "paid"
    assert api.delete(f"/api/v1/orders/{order_id}", headers=agent).status_code == 204
    assert api.get(f"/api/v1/orders/{order_id}", headers=agent).status_code == 404
    assert [entry.channel for entry in audit(app, "order.created")] == ["api"]
    assert [event["source"] for event in events(app, "order.created")] == ["api"]


def test_every_bad_order_is_a_4xx_naming_the_field_and_stores_nothing(app, api, owner):
    agent = token_for(app, "agent")
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session).id
        product_id = factories.product(session, sku="BREAD", price_minor=300).id
    before = counts(app)
    future = (utcnow() + timedelta(days=1)).isoformat()
    free = {"description": "x", "quantity": 1, "unit_price": 1}
    cases = [
        ({"lines": [{**free, "quantity": -2}]}, "lines.0.quantity"),
        ({"lines": [{**free, "unit_price": "1.234"}]}, "lines.0.unit_price"),
        ({"lines": [{**free, "currency": "USD"}], "currency": "EUR"}, "lines.0.currency"),
        ({"lines": [{"product_id": 999999, "quantity": 1}]}, "lines.0.product_id"),
        ({"lines": [{"sku": "NOPE", "quantity": 1}]}, "lines.0.sku"),
        ({"lines": [{"product_id": product_id, "quantity": 1, "unit_price": 2}]}, "lines.0.price_reason"),
        ({"lines": [free], "ordered_at": future}, "ordered_at"),
        ({"lines": []}, "lines"),
        ({"lines": [free], "status": "lost"}, "status"),
        ({"lines": [{**free, "quantity": "lots"}]}, "lines"),
    ]
    for body, field in cases:
        answer = api.post("/api/v1/orders", json={"contact_id": contact_id, **body}, headers=agent)
        assert 400 <= answer.status_code < 500, (body, answer.get_json())
        error = answer.get_json()
        assert error["field"] == field, (body, error)
    answer = api.post("/api/v1/orders", json={"contact_id": 999999, "lines": [free]}, headers=agent)
    assert answer.get_json()["field"] == "contact_id"
    assert counts(app) == before
    admin = token_for(app, "admin")
    taken = api.post("/api/v1/products", json={"sku": "BREAD", "name": "Another"}, headers=admin)
    assert taken.status_code == 409 and taken.get_json()["field"] == "sku"
    cents = api.post(
        "/api/v1/products", json={"sku": "Y", "name": "Yen", "price": "1.5", "currency": "JPY"}, headers=admin
    )
    assert cents.status_code == 400 and cents.get_json()["field"] == "price"
    assert counts(app) == before
    assert api.post("/api/v1/orders/999999/status", json={"status": "paid"}, headers=agent).status_code == 404
    assert api.get("/api/v1/orders?cursor=nonsense", headers=agent).get_json()["field"] == "cursor"


def test_a_date_alone_is_that_day_in_the_business_time_zone_and_today_is_never_in_the_future(app, api, owner):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sigdesk.models import Setting

    agent = token_for(app, "agent")
    with app.extensions["sigdesk"].database.session() as session:
        session.add(Setting(key="general.timezone", value="Pacific/Auckland", is_secret=False))
        contact_id = factories.contact(session).id
        session.commit()
    free = {"description": "x", "quantity": 1, "unit_price": 1}
    made = api.post(
        "/api/v1/orders", json={"contact_id": contact_id, "lines": [free], "ordered_at": "2026-06-01"}, headers=agent
    )
    assert made.status_code == 201, made.get_json()
    assert (made.get_json()["ordered_on"], made.get_json()["ordered_at"][:19]) == ("2026-06-01", "2026-05-31T12:00:00")
    today = datetime.now(ZoneInfo("Pacific/Auckland")).date().isoformat()  # noon UTC of it is always ahead there
    made = api.post(
        "/api/v1/orders", json={"contact_id": contact_id, "lines": [free], "ordered_at": today}, headers=agent
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["ordered_on"] == today
    moved = api.patch(f"/api/v1/orders/{made.get_json()['id']}", json={"ordered_at": "2026-06-01T09:30"}, headers=agent)
    assert (moved.get_json()["ordered_on"], moved.get_json()["ordered_at"][:19]) == (
        "2026-06-01",
        "2026-05-31T21:30:00",
    )


def test_numbers_too_large_for_a_line_or_an_order_are_a_4xx_naming_the_field_and_store_nothing(app, api, owner):
    agent = token_for(app, "agent")
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session).id
    before = counts(app)
    free = {"description": "x", "quantity": 1, "unit_price": 1}
    cases = [
        ({"lines": [{**free, "quantity": "1e30"}]}, "lines"),  # LineIn's bound: beyond what a line holds
        ({"lines": [{**free, "quantity": 1e300}]}, "lines"),
        ({"lines": [{**free, "unit_price": "1e999999"}]}, "lines.0.unit_price"),
        ({"lines": [free, {**free, "quantity": 999999999, "unit_price": 10_000_000_000}]}, "lines.1.quantity"),
        ({"lines": [{**free, "quantity": 6, "unit_price": 1_000_000_000}] * 2}, "lines"),
    ]
    for body, field in cases:
        answer = api.post("/api/v1/orders", json={"contact_id": contact_id, "currency": "EUR", **body}, headers=agent)
        assert 400 <= answer.status_code < 500, (body, answer.get_json())
        assert answer.get_json()["field"] == field, (body, answer.get_json())
    assert counts(app) == before
