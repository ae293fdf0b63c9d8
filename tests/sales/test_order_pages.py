"""Orders where agents work (sigdesk.sales.pages): the panel the inbox and the contact page load, the thread's
cart card, and the JSON calls that create, edit, confirm and announce an order — as the browser uses them,
with the session cookie and the CSRF header. A refused change names its field and stores nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from sigdesk.models import Contact, Conversation, Message, Order, OrderLine, OrderStatusChange, Product
from sigdesk.settings import services as settings
from tests import factories
from tests.commanding import audit, events
from tests.inbox.helpers import customer_writes, hours_ago
from tests.inbox.test_views import Browser, agent_browser

WA_ID = "15557770101"


@pytest.fixture
def database(app):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "sales.currency", "EUR")
    return state.database


@pytest.fixture
def owner_browser(owner, client):
    return Browser(client)


@pytest.fixture
def shop(database):
    """A customer who wrote an hour ago, and two products."""
    conversation_id = customer_writes(database, WA_ID, "Hi, can I order?", at=hours_ago(1))
    with database.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.wa_id == WA_ID))
        water = factories.product(session, sku="WATER-20", name="Water 20 L", price_minor=350)
        cups = factories.product(session, sku="CUPS-50", name="Paper cups", price_minor=199)
        ids = {"contact": contact_id, "conversation": conversation_id, "water": water.id, "cups": cups.id}
        session.commit()
    return ids


def count(database, model) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_the_panel_shows_the_purchase_history_and_the_orders(database, owner_browser, shop):
    with database.session() as session:
        contact = session.get(Contact, shop["contact"])
        water = session.get(Product, shop["water"])
        today = date.today()
        for days in (60, 30, 0):
            factories.order(session, who=contact, on=today - timedelta(days=days), lines=[(water, 2, 350)])
        factories.order(
            session, who=contact, on=today - timedelta(days=10), lines=[(water, 1, 350)], status="cancelled"
        )
        session.commit()
    html = owner_browser.get(
        f"/sales/orders/contact/{shop['contact']}?conversation_id={shop['conversation']}"
    ).get_data(as_text=True)
    assert 'data-history="orders">3 (and 1 cancelled or returned)' in html
    assert "€21.00" in html and "€7.00" in html  # lifetime value; average order value
    assert "Water 20 L (3×)" in html and "every 30 days" in html
    assert html.count('class="order-item"') == 4 and "Send confirmation" in html
    assert "transactional message" in html  # consent does not block a confirmation, and the page says so


def test_a_new_customer_has_no_interval_yet_in_plain_words(database, owner_browser, shop):
    html = owner_browser.get(f"/sales/orders/contact/{shop['contact']}").get_data(as_text=True)
    assert "not enough history" in html and "No orders yet." in html


@pytest.mark.database
def test_an_agent_creates_an_order_with_a_price_override_and_edits_it_from_the_panel(app, auth, database, shop):
    agent = agent_browser(app, auth)
    lines = [
        {"product_id": shop["water"], "quantity": "2"},
        {"product_id": shop["cups"], "quantity": "1", "unit_price": "1.50", "price_reason": "Damaged box"},
        {"description": "Delivery", "quantity": "1", "unit_price": "3"},
    ]
    created = agent.post(f"/sales/orders/contact/{shop['contact']}/orders", {"lines": lines, "notes": "Ring twice"})
    assert created.status_code == 201, created.get_data(as_text=True)
    answer = created.get_json()
    assert answer["status"] == "new" and answer["total"] == "€11.50"
    with database.session() as session:
        order = session.get(Order, answer["order_id"])
        assert (order.source, order.notes, order.created_by is not None) == ("agent", "Ring twice", True)
        reasons = session.scalars(select(OrderLine.price_reason).order_by(OrderLine.position)).all()
        assert reasons == [None, "Damaged box", None]
    assert [entry.channel for entry in audit(app, "order.created")] == ["web"]

    edited = agent.post(
        f"/sales/orders/{answer['order_id']}",
        {"lines": [{"product_id": shop["water"], "quantity": "3"}], "notes": None},
    )
    assert edited.status_code == 200 and edited.get_json()["total"] == "€10.50"
    status = agent.post(f"/sales/orders/{answer['order_id']}/status", {"status": "paid", "note": "cash"})
    assert status.get_json()["status"] == "paid"
    with database.session() as session:
        history = session.scalars(select(OrderStatusChange).order_by(OrderStatusChange.id)).all()
        assert [(row.from_status, row.to_status, row.note) for row in history] == [
            (None, "new", None),
            ("new", "paid", "cash"),
        ]
        assert session.get(Order, answer["order_id"]).notes is None
    assert len(events(app, "order.status_changed")) == 1


BAD_ORDERS = [
    ({"lines": []}, "lines"),
    ({"lines": [{"quantity": "-1", "description": "x", "unit_price": "1"}]}, "lines.0.quantity"),
    ({"lines": [{"quantity": "1", "description": "x", "unit_price": "12,50"}]}, "lines.0.unit_price"),
    ({"lines": [{"quantity": "1", "description": "x", "unit_price": "12.505"}]}, "lines.0.unit_price"),
    ({"lines": [{"quantity": "1", "product_id": 999999}]}, "lines.0.product_id"),
    ({"lines": [{"quantity": "1", "product_id": "WATER"}]}, "lines.0.product_id"),
    ({"lines": [{"quantity": "1", "description": "", "unit_price": "1"}]}, "lines.0.description"),
    ({"lines": "all of them"}, "lines"),
    ({"lines": [{"quantity": "1", "description": "x", "unit_price": "1"}], "notes": 5}, "notes"),
]


def test_a_bad_order_is_refused_naming_the_field_and_nothing_is_stored(owner_browser, database, shop):
    for body, field in BAD_ORDERS:
        response = owner_browser.post(f"/sales/orders/contact/{shop['contact']}/orders", body)
        assert response.status_code == 400, (body, response.get_data(as_text=True))
        refusal = response.get_json()
        # a wrong shape names the body's field and the line's place in its message; the command the line's field
        assert refusal["field"] == field or (
            refusal["field"] == field.split(".")[0] and f"'{field}'" in refusal["error"]
        ), (body, refusal)
    assert count(database, Order) == 0 and count(database, OrderLine) == 0


def test_a_changed_price_needs_a_reason_and_a_refused_edit_keeps_the_order(owner_browser, database, shop):
    created = owner_browser.post(
        f"/sales/orders/contact/{shop['contact']}/orders", {"lines": [{"product_id": shop["water"], "quantity": "1"}]}
    ).get_json()
    refused = owner_browser.post(
        f"/sales/orders/{created['order_id']}",
        {"lines": [{"product_id": shop["water"], "quantity": "1", "unit_price": "2.00"}], "notes": "x"},
    )
    assert refused.status_code == 400 and refused.get_json()["field"] == "lines.0.price_reason"
    with database.session() as session:
        order = session.get(Order, created["order_id"])
        assert (order.total_minor, order.notes) == (350, None)
    bad_status = owner_browser.post(f"/sales/orders/{created['order_id']}/status", {"status": "lost"})
    assert bad_status.status_code == 400 and bad_status.get_json()["field"] == "status"
    assert owner_browser.post("/sales/orders/999999/status", {"status": "paid"}).status_code == 404


def test_the_product_picker_finds_active_products_by_name_or_sku(owner_browser, database, shop):
    with database.session() as session:
        factories.product(session, sku="OLD-1", name="Water 5 L", active=False)
        session.commit()
    found = owner_browser.get("/sales/orders/products?q=water").get_json()["items"]
    assert [(item["sku"], item["price"], item["currency"]) for item in found] == [("WATER-20", "3.50", "EUR")]
    assert owner_browser.get("/sales/orders/products?q=" + "x" * 101).status_code == 400


def test_signed_out_people_and_posts_without_the_csrf_token_are_refused(app, client, owner, database, shop):
    browser = Browser(client)
    body = {"lines": [{"product_id": shop["water"], "quantity": "1"}]}
    assert (
        client.post(f"/sales/orders/contact/{shop['contact']}/orders", json=body).status_code == 400
    )  # no CSRF header
    anonymous = app.test_client()
    assert anonymous.get(f"/sales/orders/contact/{shop['contact']}").status_code in (302, 401)
    assert anonymous.post(
        f"/sales/orders/contact/{shop['contact']}/orders", json=body, headers={"X-CSRFToken": browser.token}
    ).status_code in (302, 400, 401)
    assert count(database, Order) == 0


WATER_CART = [{"product_retailer_id": "WATER-20", "quantity": 2, "item_price": 3.5, "currency": "EUR"}]


def cart_order(app, database, items=WATER_CART, wa_id: str = WA_ID) -> tuple[int, int | None]:
    """A cart arrives by signed webhook and the worker's consumer makes its draft order; (message id, order id)."""
    state = app.extensions["sigdesk"]
    with database.session() as session:
        settings.set_text(session, state.cipher, "whatsapp.app_secret", factories.APP_SECRET)
        state.outbox(session)
    body = factories.cart_message(wa_id, items, meta=factories.metadata())
    raw, headers = factories.signed(body, factories.APP_SECRET)
    assert app.test_client().post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200
    with database.session() as session:
        state.outbox(session)
    with database.session() as session:
        message_id = session.scalar(select(Message.id).where(Message.type == "order"))
        return message_id, session.scalar(select(Order.id).where(Order.message_id == message_id))


def test_the_threads_cart_card_offers_to_confirm_the_draft_order(app, owner_browser, database, shop):
    message_id, order_id = cart_order(app, database)
    thread = owner_browser.get(f"/inbox/c/{shop['conversation']}").get_data(as_text=True)
    assert f'data-cart-order-src="/sales/orders/message/{message_id}"' in thread
    card = owner_browser.get(f"/sales/orders/message/{message_id}").get_data(as_text=True)
    assert "Draft order" in card and "data-cart-confirm" in card
    assert owner_browser.post(f"/sales/orders/{order_id}/status", {"status": "confirmed"}).status_code == 200
    card = owner_browser.get(f"/sales/orders/message/{message_id}").get_data(as_text=True)
    assert "confirmed" in card and "data-cart-confirm" not in card
    assert owner_browser.get("/sales/orders/message/999999").status_code == 404


def test_a_cart_no_order_could_be_made_of_says_so_after_a_while(app, owner_browser, database, shop):
    mixed = [WATER_CART[0], {**WATER_CART[0], "product_retailer_id": "CUPS-50", "currency": "USD"}]
    message_id, order_id = cart_order(app, database, mixed)
    assert order_id is None
    assert "Making a draft order" in owner_browser.get(f"/sales/orders/message/{message_id}").get_data(as_text=True)
    with database.session() as session:
        session.get(Message, message_id).created_at = hours_ago(1)
        session.commit()
    card = owner_browser.get(f"/sales/orders/message/{message_id}").get_data(as_text=True)
    assert "No draft order was made of this cart" in card and "data-pending" not in card


def test_a_confirmation_is_free_text_inside_the_window_and_a_template_outside(app, owner_browser, database, shop):
    created = owner_browser.post(
        f"/sales/orders/contact/{shop['contact']}/orders", {"lines": [{"product_id": shop["water"], "quantity": "1"}]}
    ).get_json()
    url = f"/sales/orders/{created['order_id']}/confirmation"
    panel = owner_browser.get(f"/sales/orders/contact/{shop['contact']}?conversation_id={shop['conversation']}")
    assert f"Your order #{created['number']} is confirmed: 1 × Water 20 L. Total: €3.50." in panel.get_data(
        as_text=True
    )
    sent = owner_browser.post(url, {"conversation_id": shop["conversation"], "text": "Confirmed, thanks!"})
    assert sent.status_code == 202 and sent.get_json()["kind"] == "text"
    assert (
        owner_browser.post(url, {"conversation_id": shop["conversation"], "text": "  "}).get_json()["field"] == "text"
    )

    other = customer_writes(database, "15557770199", "old", at=hours_ago(30))  # someone else's conversation
    refused = owner_browser.post(url, {"conversation_id": other, "text": "hi"})
    assert refused.status_code == 400 and refused.get_json()["field"] == "conversation_id"

    with database.session() as session:
        session.get(Conversation, shop["conversation"]).last_inbound_at = hours_ago(30)
        template = factories.template(session, name="order_confirmed", body="Order {{1}} confirmed, total {{2}}")
        session.commit()
        template_id = template.id
    closed = owner_browser.post(url, {"conversation_id": shop["conversation"], "text": "Confirmed"})
    assert closed.status_code == 400 and closed.get_json()["field"] == "template_id"
    panel = owner_browser.get(f"/sales/orders/contact/{shop['contact']}?conversation_id={shop['conversation']}")
    assert "order_confirmed" in panel.get_data(as_text=True)
    queued = owner_browser.post(
        url, {"conversation_id": shop["conversation"], "template_id": template_id, "params": {"body": ["#1", "€3.50"]}}
    )
    assert queued.status_code == 202, queued.get_data(as_text=True)
    assert queued.get_json()["kind"] == "template"
    with database.session() as session:
        kinds = session.scalars(select(Message.type).where(Message.direction == "out").order_by(Message.id)).all()
        assert kinds == ["text", "template"]


def test_a_cart_refused_for_a_number_no_order_holds_says_so_on_its_card_after_a_while(
    app, owner_browser, database, shop
):
    dear = [{**WATER_CART[0], "quantity": 999999999, "item_price": "99999999.99"}]  # beyond any order's total
    message_id, order_id = cart_order(app, database, dear)
    assert order_id is None
    with database.session() as session:
        session.get(Message, message_id).created_at = hours_ago(1)
        session.commit()
    card = owner_browser.get(f"/sales/orders/message/{message_id}").get_data(as_text=True)
    assert "No draft order was made of this cart" in card and "data-pending" not in card
