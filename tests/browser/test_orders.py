"""A WhatsApp cart in Chromium: it arrives by signed webhook at the real server, the worker makes it a draft
order, the agent confirms it from the thread, and it shows in the contact's purchase history and on the
dashboard.

Real parts: the waitress server and its worker, Meta's webhook signed and posted over HTTP by the fake Graph
API, Debian's Chromium.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from sigdesk.auth import services as accounts
from sigdesk.models import Contact, Conversation, Order, OrderStatusChange
from sigdesk.settings import services as settings
from tests import factories
from tests.browser.test_inbox import LIVE_MS, Agent
from tests.conftest import PASSWORD
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.database]  # on MariaDB too when it is configured

APP_SECRET = factories.APP_SECRET
CUSTOMER = "15557770042"


@pytest.fixture
def agent(browser, live_server, app, fake_graph) -> Iterator[Agent]:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        accounts.create_user(session, "owner@example.com", "Olive Owner", "owner", PASSWORD, rounds=4)
        factories.whatsapp_connection(
            session, state.cipher, fake_graph.url, **{"whatsapp.read_receipts": "false", "onboarding.step": "done"}
        )
        settings.set_text(session, state.cipher, "sales.currency", "EUR")
        factories.product(session, sku="WATER-20", name="Water 20 L", price_minor=350)
        session.commit()
    fake_graph.connect_webhook(live_server.url + "/webhooks/whatsapp", APP_SECRET)
    person = Agent(browser, live_server.url, "owner@example.com")
    yield person
    person.context.close()


def cart() -> bytes:
    body = factories.cart_message(
        CUSTOMER,
        [
            {"product_retailer_id": "WATER-20", "quantity": 2, "item_price": 3.5, "currency": "EUR"},
            {"product_retailer_id": "CAP-9", "quantity": 1, "item_price": 1.25, "currency": "EUR"},
        ],
        text="Before noon please",
        wamid="wamid.CART.BROWSER",
        name="Rosa Rossi",
        meta=factories.metadata(),
    )
    return json.dumps(body).encode()


def the_order(app) -> Order | None:
    with app.extensions["sigdesk"].database.session() as session:
        found = session.scalar(select(Order))
        if found is not None:
            session.expunge(found)
        return found


def test_a_whatsapp_cart_becomes_a_draft_order_the_agent_confirms_and_it_shows_in_history_and_dashboard(
    agent, app, fake_graph
):
    assert fake_graph.post_signed(cart()).status_code == 200
    draft = wait_for(lambda: the_order(app), timeout=15)
    assert (draft.status, draft.source, draft.total_minor) == ("new", "cart", 2 * 350 + 125)
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.wa_id == CUSTOMER))
        conversation_id = session.scalar(select(Conversation.id).where(Conversation.contact_id == contact_id))

    agent.open(conversation_id)
    card = agent.page.locator("#messages [data-cart-order]")
    expect(card).to_contain_text(f"Draft order #{draft.number}", timeout=LIVE_MS)
    expect(card).to_contain_text("placeholder products")  # CAP-9 is not in the catalogue yet
    panel = agent.page.locator("#panel-orders")
    expect(panel.locator(f"[data-order-number='{draft.number}'] [data-order-status]")).to_have_text("new")
    agent.screenshot("orders-cart-draft")

    card.get_by_role("button", name="Confirm").click()
    expect(card).to_contain_text(f"Order #{draft.number}")
    expect(card.locator(".badge")).to_have_text("confirmed")
    expect(panel.locator(f"[data-order-number='{draft.number}'] [data-order-status]")).to_have_text("confirmed")
    expect(panel.locator("[data-history=orders]")).to_have_text("1")
    expect(panel.locator("[data-history=lifetime]")).to_have_text("€8.25")
    expect(panel.locator("[data-history=usual]")).to_contain_text("Water 20 L")
    agent.screenshot("orders-cart-confirmed")

    with app.extensions["sigdesk"].database.session() as session:
        steps = session.scalars(select(OrderStatusChange).order_by(OrderStatusChange.id)).all()
        assert [(step.from_status, step.to_status, step.actor) for step in steps] == [
            (None, "new", steps[0].actor),
            ("new", "confirmed", "Olive Owner"),
        ]

    # the contact page shows the same history, and an order written there with a typo keeps what was typed
    agent.page.goto(f"{agent.base_url}/contacts/{contact_id}")
    orders = agent.page.locator("#orders-card")
    expect(orders.locator("[data-history=lifetime]")).to_have_text("€8.25")
    new = orders.locator("details.order-new")
    new.locator("summary").click()
    new.locator("[data-product-search]").fill("wat")
    new.get_by_role("button", name="Water 20 L (WATER-20) · 3.50 EUR").click()
    new.get_by_role("button", name="Add a free-text line").click()
    delivery = new.locator("[data-line]").nth(1)
    delivery.locator("[name=description]").fill("Delivery")
    delivery.locator("[name=unit_price]").fill("12,50")
    new.get_by_role("button", name="Create order").click()
    expect(new.locator("[data-editor-error]")).to_contain_text("unit_price")
    expect(delivery.locator("[name=unit_price]")).to_have_attribute("aria-invalid", "true")
    expect(delivery.locator("[name=unit_price]")).to_have_value("12,50")
    expect(delivery.locator("[name=description]")).to_have_value("Delivery")
    # the refused call is the one expected console line; nothing else went wrong
    assert len([error for error in agent.watch.errors if "status of 400" in error]) == 1
    agent.watch.errors = [error for error in agent.watch.errors if "status of 400" not in error]
    delivery.locator("[name=unit_price]").fill("2.50")
    new.get_by_role("button", name="Create order").click()
    expect(orders.locator("[data-history=orders]")).to_have_text("2")
    expect(orders.locator("[data-history=lifetime]")).to_have_text("€14.25")

    # and the dashboard counts both (its revenue chart, as the dashboard page asks for it)
    chart = agent.page.request.get(f"{agent.base_url}/analytics/charts/revenue?period=7d").json()
    assert (chart["totals"]["orders"], chart["totals"]["revenue"]) == (2, 14.25)
    agent.watch.assert_clean()


def test_the_reorders_pages_open_thread_link_fills_an_empty_composer_once(agent, app):
    with app.extensions["sigdesk"].database.session() as session:
        conversation = factories.conversation(session, factories.contact(session, CUSTOMER, "Rosa Rossi"))
        factories.message(session, conversation, text="Hi")
        session.commit()
        conversation_id = conversation.id
    page = agent.page
    page.goto(f"{agent.base_url}/inbox/?c={conversation_id}&draft=Time+for+a+new+jug%3F")
    expect(page.locator("#composer-text")).to_have_value("Time for a new jug?")
    assert "draft=" not in page.url, "a reload must not fill it again"
