"""A customer's WhatsApp cart becomes a draft order: made by an outbox consumer on the worker (never in the
webhook request), matched to products by retailer id, unknown ids as placeholder products, once per message
however often the event is offered, in the cart's own currency."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from sigdesk.models import Message, Order, OrderLine, OrderStatusChange, OutboxCursor, Product
from sigdesk.sales.carts import CART_PRICE_REASON, parse_cart
from sigdesk.settings import services as settings
from tests import factories
from tests.commanding import events
from tests.outbound.test_sending import APP_SECRET, connect, inbound

TEA = {"product_retailer_id": "SKU-TEA", "quantity": 2, "item_price": 4.2, "currency": "EUR"}
SCONE = {"product_retailer_id": "SKU-SCONE", "quantity": 3, "item_price": "2.50", "currency": "EUR"}
UNKNOWN = {"product_retailer_id": "SKU-NEW-77", "quantity": 1, "item_price": 9.99, "currency": "EUR"}


def feed(app) -> None:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        state.outbox(session)


def send_cart(app, wamid: str, items, text: str | None = None, when: float | None = None) -> None:
    content = {"catalog_id": "777000111", "product_items": list(items)}
    if text is not None:
        content["text"] = text
    raw, headers = factories.signed(inbound(wamid, "order", content, when=when or time.time() - 5), APP_SECRET)
    assert app.test_client().post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200


@pytest.fixture
def shop(app, fake_graph):
    """A connected shop selling in EUR with tea (4.20) and scones (2.00) in its catalogue."""
    state = app.extensions["sigdesk"]
    connect(app, fake_graph)
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "sales.currency", "EUR")
        factories.product(session, sku="SKU-TEA", name="Green tea", price_minor=420)
        factories.product(session, sku="SKU-SCONE", name="Scone", price_minor=200)
        session.commit()
    feed(app)  # the consumer reads what happens from now on
    return state


def lines_of(session, order: Order) -> list[OrderLine]:
    return list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.position)))


@pytest.mark.database
def test_a_cart_becomes_a_draft_order_with_its_lines_matched_by_retailer_id_and_placeholders(app, shop):
    send_cart(app, "wamid.CART1", [TEA, SCONE, UNKNOWN], text="Please deliver before noon")
    with shop.database.session() as session:
        assert session.scalar(select(Order.id)) is None  # not in the webhook request
    feed(app)
    with shop.database.session() as session:
        [order] = session.scalars(select(Order)).all()
        message = session.scalars(select(Message).where(Message.wamid == "wamid.CART1")).one()
        assert (order.status, order.source, order.currency, order.message_id, order.contact_id) == (
            "new",
            "cart",
            "EUR",
            message.id,
            message.contact_id,
        )
        assert order.notes == "Customer's note with the cart: Please deliver before noon"
        tea, scone, unknown = lines_of(session, order)
        assert (tea.sku, tea.description, tea.quantity, tea.unit_price_minor, tea.price_reason) == (
            "SKU-TEA",
            "Green tea",
            Decimal(2),
            420,
            None,
        )
        assert (scone.sku, scone.unit_price_minor, scone.list_price_minor, scone.price_reason) == (
            "SKU-SCONE",
            250,
            200,
            CART_PRICE_REASON,
        )  # the cart's price wins, with the reason the command asks for
        placeholder = session.get(Product, unknown.product_id)
        assert (placeholder.sku, placeholder.name, placeholder.placeholder, placeholder.price_minor) == (
            "SKU-NEW-77",
            "Unknown product SKU-NEW-77",
            True,
            None,
        )
        assert (unknown.quantity, unknown.unit_price_minor) == (Decimal(1), 999)
        assert order.total_minor == 2 * 420 + 3 * 250 + 999
        assert [row.to_status for row in session.scalars(select(OrderStatusChange))] == ["new"]
    assert [(e["order_id"], e["source"]) for e in events(app, "order.created")] == [(order.id, "cart")]


@pytest.mark.database
def test_a_cart_offered_again_or_delivered_twice_makes_one_order(app, shop):
    send_cart(app, "wamid.CART2", [TEA])
    feed(app)
    send_cart(app, "wamid.CART2", [TEA])  # Meta's redelivery of the same message
    with shop.database.session() as session:
        session.get(OutboxCursor, "cart orders").last_id = 0  # at least once: every event offered again
        session.commit()
    feed(app)
    with shop.database.session() as session:
        assert len(session.scalars(select(Order)).all()) == 1
        assert len(session.scalars(select(Product).where(Product.placeholder.is_(True))).all()) == 0
    assert len(events(app, "order.created")) == 1


@pytest.mark.database
def test_a_cart_in_another_currency_than_the_shops_keeps_its_own_currency(app, shop):
    usd_new = {"product_retailer_id": "SKU-USD-1", "quantity": 2, "item_price": 5.5, "currency": "USD"}
    usd_tea = {**TEA, "currency": "USD", "item_price": 5}
    send_cart(app, "wamid.CART3", [usd_new, usd_tea])
    feed(app)
    with shop.database.session() as session:
        [order] = session.scalars(select(Order)).all()
        assert (order.currency, order.total_minor) == ("USD", 2 * 550 + 2 * 500)
        new, tea = lines_of(session, order)
        assert session.get(Product, new.product_id).currency == "USD"
        # the EUR tea cannot be a USD line: it is kept as what was bought, at the cart's price, never converted
        assert (tea.product_id, tea.description, tea.unit_price_minor) == (None, "Green tea [SKU-TEA]", 500)


def test_a_cart_with_nothing_usable_makes_no_order_and_the_message_stays(app, shop):
    send_cart(
        app, "wamid.CART4", [{"product_retailer_id": "SKU-TEA", "quantity": 0, "item_price": 1, "currency": "EUR"}]
    )
    send_cart(app, "wamid.CART5", [{**TEA, "currency": "EUR"}, {**SCONE, "currency": "USD"}])  # mixed currencies
    feed(app)
    with shop.database.session() as session:
        assert session.scalar(select(Order.id)) is None
        assert len(session.scalars(select(Message).where(Message.type == "order")).all()) == 2


def test_the_stored_cart_is_read_back_whatever_shape_meta_gave():
    assert parse_cart(None) is None and parse_cart("not json") is None and parse_cart('{"order": []}') is None
    cart = parse_cart(
        '{"order": {"catalog_id": "1", "items": [{"product_retailer_id": "A", "quantity": 2, "item_price": "1.5",'
        ' "currency": "eur"}, {"product_retailer_id": "", "quantity": 1}, {"product_retailer_id": "B", "quantity": "x"}]}}'
    )
    assert [(item.sku, item.quantity, item.price, item.currency) for item in cart.items] == [
        ("A", Decimal(2), Decimal("1.5"), "EUR")
    ]


@pytest.mark.database
def test_a_cart_with_numbers_no_order_can_hold_is_refused_and_never_holds_back_later_carts(app, shop, caplog):
    huge = {**TEA, "item_price": "1e999999"}  # more than any amount, and than Decimal's context can scale
    dear = {**SCONE, "quantity": 999999999, "item_price": "99999999.99"}  # a line total beyond a BigInteger's
    send_cart(app, "wamid.HUGE", [huge])
    send_cart(app, "wamid.DEAR", [dear])
    send_cart(app, "wamid.GOOD1", [TEA])
    with caplog.at_level("WARNING", logger="sigdesk.sales.carts"):
        feed(app)
    send_cart(app, "wamid.GOOD2", [SCONE])
    feed(app)
    with shop.database.session() as session:
        made = session.execute(select(Message.wamid).join(Order, Order.message_id == Message.id)).scalars().all()
        refused = session.scalars(select(Message.id).where(Message.wamid.in_(["wamid.HUGE", "wamid.DEAR"]))).all()
    assert sorted(made) == ["wamid.GOOD1", "wamid.GOOD2"]
    logged = [record.getMessage() for record in caplog.records if "refused" in record.getMessage()]
    assert len(logged) == 2 and all(str(message_id) in " ".join(logged) for message_id in refused)
    assert not any("SKU-" in line or "1e999999" in line for line in logged)  # the reason's kind, never the cart


@pytest.mark.database
def test_a_broken_currency_setting_falls_back_to_the_settings_default_and_never_stops_carts(app, shop):
    from sigdesk.models import Setting
    from sigdesk.sales.money import shop_currency
    from sigdesk.settings.specs import spec_for

    with shop.database.session() as session:
        session.get(Setting, "sales.currency").value = "EURO"  # written by hand, or by an older version
        session.commit()
        assert shop_currency(session) == spec_for("sales.currency").default
    no_currency = {key: value for key, value in TEA.items() if key != "currency"}
    send_cart(app, "wamid.NOCUR", [no_currency])
    feed(app)
    with shop.database.session() as session:
        [order] = session.scalars(select(Order)).all()
        assert order.currency == spec_for("sales.currency").default
