"""Products and orders change through one command each: validated with a refusal that names the field (and
stores nothing), written with totals recomputed from the lines, numbered in one sequence, audited, and announced
after the commit only."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.db import utcnow
from sigdesk.errors import Conflict, NotFound, UserError
from sigdesk.models import Contact
from sigdesk.models.sales import Order, OrderLine, OrderStatusChange, Product
from sigdesk.sales import commands
from sigdesk.sales.schemas import LineIn
from tests import factories
from tests.commanding import audit, events

pytestmark = pytest.mark.database


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


def agent(session) -> Actor:
    return Actor(factories.user(session, "agent", name="Ana Agent"), "web")


def _stored(database):
    with database.session() as session:
        return (
            session.scalar(select(func.count(Order.id))),
            session.scalar(select(func.count(OrderLine.id))),
            session.scalar(select(func.count(Product.id))),
        )


def test_an_order_is_numbered_from_1001_totalled_from_its_lines_and_announced_after_the_commit(app, database):
    with database.session() as session:
        actor = agent(session)
        who = factories.contact(session)
        water = factories.product(session, sku="WATER-20", name="Water 20 L", price_minor=250)
        order = commands.create_order(
            session,
            actor,
            who.id,
            [LineIn(product_id=water.id, quantity=2), LineIn(description="Delivery", quantity=1, unit_price="1.50")],
            source="agent",
            notes="Leave at the door",
        )
        order_id, contact_id = order.id, who.id
    with database.session() as session:
        order = session.get(Order, order_id)
        assert (order.number, order.total_minor, order.currency, order.status) == (1001, 650, "EUR", "new")
        lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position))
        assert [(line.sku, line.description, line.quantity, line.total_minor) for line in lines] == [
            ("WATER-20", "Water 20 L", Decimal("2.000"), 500),
            (None, "Delivery", Decimal("1.000"), 150),
        ]
        history = session.scalars(select(OrderStatusChange).where(OrderStatusChange.order_id == order_id)).all()
        assert [(row.from_status, row.to_status, row.actor) for row in history] == [(None, "new", "Ana Agent")]
    assert events(app, "order.created") == [{"order_id": order_id, "contact_id": contact_id, "source": "agent"}]
    [entry] = audit(app, "order.created")
    assert entry.target == f"order {order_id}" and entry.channel == "web" and "door" not in str(entry.detail)


def test_a_rolled_back_order_is_never_announced(app, database):
    with pytest.raises(RuntimeError), database.session() as session:
        commands.create_order(
            session,
            agent(session),
            factories.contact(session).id,
            [LineIn(description="x", quantity=1, unit_price=1)],
            source="agent",
        )
        raise RuntimeError("the caller's transaction fails later")
    assert events(app, "order.created") == [] and _stored(database)[0] == 0


def test_order_numbers_follow_on_from_history_and_never_repeat_under_concurrent_writers(app, database):
    with database.session() as session:
        who = factories.contact(session)
        factories.order(session, who)  # history written without the command: #1001
        contact_id = who.id
    failures: list[BaseException] = []

    def write(count: int) -> None:
        try:
            for _ in range(count):
                with database.session() as session:
                    commands.create_order(
                        session,
                        Actor.system(),
                        contact_id,
                        [LineIn(description="Bread", quantity=1, unit_price=2)],
                        source="api",
                    )
        except BaseException as exc:  # noqa: BLE001  (reported below)
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(4,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with database.session() as session:
        numbers = sorted(session.scalars(select(Order.number)))
    assert numbers == list(range(1001, 1014))


BAD_LINES = [
    ({"quantity": -1, "unit_price": 1, "description": "x"}, "lines.0.quantity", "more than 0"),
    ({"quantity": 0, "unit_price": 1, "description": "x"}, "lines.0.quantity", "more than 0"),
    ({"quantity": "1.0001", "unit_price": 1, "description": "x"}, "lines.0.quantity", "3 decimals"),
    ({"quantity": 1, "unit_price": "1.005", "description": "x"}, "lines.0.unit_price", "2 decimals"),
    ({"quantity": 1, "unit_price": "-2", "description": "x"}, "lines.0.unit_price", "negative"),
    ({"quantity": 1, "unit_price": 1, "description": "x", "currency": "USD"}, "lines.0.currency", "USD"),
    ({"quantity": 1, "product_id": 999999}, "lines.0.product_id", "no product"),
    ({"quantity": 1, "sku": "NOPE"}, "lines.0.sku", "NOPE"),
    ({"quantity": 1, "unit_price": 1}, "lines.0.description", "Describe"),
    ({"quantity": 1, "description": "x"}, "lines.0.unit_price", "unit price"),
]


def test_every_bad_line_is_refused_naming_its_field_and_nothing_is_stored(database):
    with database.session() as session:
        who = factories.contact(session)
        good = factories.product(session, sku="GOOD")
        contact_id, good_id = who.id, good.id
    before = _stored(database)
    for line, field, words in BAD_LINES:
        with pytest.raises(UserError, match=words) as refused, database.session() as session:
            commands.create_order(
                session,
                agent(session),
                contact_id,
                [LineIn(product_id=good_id, quantity=1), LineIn(**line)],
                source="agent",
                currency="EUR",
            )
        assert refused.value.field == field.replace("lines.0", "lines.1"), line
    assert _stored(database) == before


def test_a_changed_price_needs_a_reason_and_a_product_in_another_currency_is_refused(database):
    with database.session() as session:
        who = factories.contact(session)
        bread = factories.product(session, sku="BREAD", price_minor=300)
        dollars = factories.product(session, sku="USD-ITEM", currency="USD")
        ids = who.id, bread.id, dollars.id
    with pytest.raises(UserError, match="Say why") as refused, database.session() as session:
        commands.create_order(
            session,
            agent(session),
            ids[0],
            [LineIn(product_id=ids[1], quantity=1, unit_price="2.50")],
            source="agent",
            currency="EUR",
        )
    assert refused.value.field == "lines.0.price_reason"
    with pytest.raises(UserError, match="USD") as refused, database.session() as session:
        commands.create_order(
            session, agent(session), ids[0], [LineIn(product_id=ids[2], quantity=1)], source="agent", currency="EUR"
        )
    assert refused.value.field == "lines.0.product_id"
    with database.session() as session:
        order = commands.create_order(
            session,
            agent(session),
            ids[0],
            [LineIn(product_id=ids[1], quantity=1, unit_price="2.50", price_reason="Regular customer")],
            source="agent",
            currency="EUR",
        )
        line = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
        assert (line.unit_price_minor, line.list_price_minor, line.price_reason) == (250, 300, "Regular customer")


def test_an_order_is_refused_when_dated_in_the_future_empty_unknown_contact_or_status(database):
    with database.session() as session:
        contact_id = factories.contact(session).id
    line = [LineIn(description="x", quantity=1, unit_price=1)]
    cases = [
        (dict(contact_id=contact_id, lines=line, ordered_at=utcnow() + timedelta(hours=1)), "ordered_at"),
        (dict(contact_id=contact_id, lines=[]), "lines"),
        (dict(contact_id=999999, lines=line), "contact_id"),
        (dict(contact_id=contact_id, lines=line, status="lost"), "status"),
        (dict(contact_id=contact_id, lines=line, currency="EURO"), "currency"),
    ]
    for arguments, field in cases:
        with pytest.raises(UserError) as refused, database.session() as session:
            commands.create_order(session, agent(session), source="agent", **arguments)
        assert refused.value.field == field, arguments
    assert _stored(database)[0] == 0
    with database.session() as session:  # a device whose clock runs a minute fast is not refused
        order = commands.create_order(
            session, agent(session), contact_id, line, source="agent", ordered_at=utcnow() + timedelta(minutes=1)
        )
        assert order.ordered_on is not None


def test_the_order_day_is_the_day_in_the_business_time_zone(database):
    from sigdesk.models import Setting

    with database.session() as session:
        session.add(Setting(key="general.timezone", value="Pacific/Auckland", is_secret=False))
        contact_id = factories.contact(session).id
        at = datetime(2026, 3, 1, 20, 0, tzinfo=timezone.utc)  # already 2 March in Auckland
        order = commands.create_order(
            session,
            agent(session),
            contact_id,
            [LineIn(description="x", quantity=1, unit_price=1)],
            source="api",
            ordered_at=at,
        )
        assert str(order.ordered_on) == "2026-03-02"


def test_status_changes_keep_a_history_row_each_and_the_same_status_changes_nothing(app, database):
    with database.session() as session:
        actor = agent(session)
        order = commands.create_order(
            session,
            actor,
            factories.contact(session).id,
            [LineIn(description="x", quantity=1, unit_price=1)],
            source="agent",
        )
        commands.set_order_status(session, actor, order.id, "confirmed")
        commands.set_order_status(session, actor, order.id, "confirmed")
        commands.set_order_status(session, actor, order.id, "cancelled", note="Customer changed their mind")
        with pytest.raises(UserError) as refused:
            commands.set_order_status(session, actor, order.id, "teleported")
        assert refused.value.field == "status"
        with pytest.raises(NotFound):
            commands.set_order_status(session, actor, 999999, "paid")
        order_id, contact_id = order.id, order.contact_id
    with database.session() as session:
        rows = session.scalars(
            select(OrderStatusChange).where(OrderStatusChange.order_id == order_id).order_by(OrderStatusChange.id)
        ).all()
        assert [(row.from_status, row.to_status, row.note) for row in rows] == [
            (None, "new", None),
            ("new", "confirmed", None),
            ("confirmed", "cancelled", "Customer changed their mind"),
        ]
    assert events(app, "order.status_changed") == [
        {"order_id": order_id, "contact_id": contact_id, "from_status": "new", "to_status": "confirmed"},
        {"order_id": order_id, "contact_id": contact_id, "from_status": "confirmed", "to_status": "cancelled"},
    ]


def test_updating_lines_recomputes_the_total_and_a_refused_update_keeps_the_order(app, database):
    with database.session() as session:
        actor = agent(session)
        bread = factories.product(session, sku="BREAD", price_minor=300)
        order = commands.create_order(
            session, actor, factories.contact(session).id, [LineIn(product_id=bread.id, quantity=1)], source="agent"
        )
        order_id, bread_id = order.id, bread.id
    with pytest.raises(UserError) as refused, database.session() as session:
        commands.update_order(session, agent(session), order_id, lines=[LineIn(product_id=bread_id, quantity=-3)])
    assert refused.value.field == "lines.0.quantity"
    with database.session() as session:
        assert session.get(Order, order_id).total_minor == 300
        same = commands.update_order(session, agent(session), order_id, lines=[LineIn(product_id=bread_id, quantity=1)])
        assert same.total_minor == 300
    assert events(app, "order.changed") == []  # nothing really changed
    with database.session() as session:
        order = commands.update_order(
            session, agent(session), order_id, lines=[LineIn(product_id=bread_id, quantity="2.5")], notes="Sliced"
        )
        assert (order.total_minor, order.notes) == (750, "Sliced")
        commands.update_order(session, agent(session), order_id, notes=None)
    with database.session() as session:
        assert session.get(Order, order_id).notes is None
    assert len(events(app, "order.changed")) == 2


def test_deleting_an_order_removes_its_lines_and_history(app, database):
    with database.session() as session:
        order = commands.create_order(
            session,
            agent(session),
            factories.contact(session).id,
            [LineIn(description="x", quantity=1, unit_price=1)],
            source="agent",
        )
        order_id = order.id
    with database.session() as session:
        commands.delete_order(session, agent(session), order_id)
        with pytest.raises(NotFound):
            commands.delete_order(session, agent(session), order_id)
    assert _stored(database)[:2] == (0, 0)
    with database.session() as session:
        assert session.scalar(select(func.count(OrderStatusChange.id))) == 0
    assert [event["order_id"] for event in events(app, "order.deleted")] == [order_id]


def test_products_are_validated_and_a_taken_sku_is_a_conflict(app, database):
    with database.session() as session:
        actor = agent(session)
        product = commands.create_product(
            session, actor, sku=" JUG-20 ", name="Water jug", price="3.5", currency="eur", reorder_days=30
        )
        assert (product.sku, product.price_minor, product.currency, product.placeholder) == (
            "JUG-20",
            350,
            "EUR",
            False,
        )
        product_id = product.id
    bad = [
        (dict(sku="", name="x"), "sku"),
        (dict(sku="A", name="  "), "name"),
        (dict(sku="A", name="x", price="1.234", currency="EUR"), "price"),
        (dict(sku="A", name="x", price="12", currency="JPY", reorder_days=0), "reorder_days"),
        (dict(sku="A", name="x", currency="XXXX"), "currency"),
    ]
    for arguments, field in bad:
        with pytest.raises(UserError) as refused, database.session() as session:
            commands.create_product(session, agent(session), **arguments)
        assert refused.value.field == field, arguments
    with pytest.raises(Conflict) as refused, database.session() as session:
        commands.create_product(session, agent(session), sku="JUG-20", name="Other")
    assert refused.value.field == "sku"
    assert _stored(database)[2] == 1
    assert events(app, "product.changed") == [{"product_id": product_id}]


def test_a_placeholder_is_made_for_an_unknown_sku_and_editing_it_completes_it(app, database):
    with database.session() as session:
        known = factories.product(session, sku="KNOWN")
        found = commands.placeholder_products(session, Actor.system("webhook"), ["KNOWN", "NEW-1", "NEW-1"], "EUR")
        assert found["KNOWN"].id == known.id
        made = found["NEW-1"]
        assert (made.name, made.placeholder, made.price_minor) == ("Unknown product NEW-1", True, None)
        again = commands.placeholder_products(session, Actor.system("webhook"), ["NEW-1"], "EUR")
        assert again["NEW-1"].id == made.id
        made_id = made.id
    with database.session() as session:
        product = commands.update_product(session, agent(session), made_id, name="Oat milk", price="2.10")
        assert (product.placeholder, product.price_minor) == (False, 210)
        with pytest.raises(UserError) as refused:
            commands.update_product(session, agent(session), made_id, colour="red")
        assert refused.value.field == "colour"
    assert len(events(app, "product.changed")) == 2


def test_a_cart_message_becomes_one_order_only(database):
    with database.session() as session:
        conversation = factories.conversation(session)
        message = factories.message(session, conversation, text="cart")
        line = [LineIn(description="x", quantity=1, unit_price=1)]
        commands.create_order(
            session, Actor.system("webhook"), conversation.contact_id, line, source="cart", message_id=message.id
        )
        with pytest.raises(Conflict) as refused:
            commands.create_order(
                session, Actor.system("webhook"), conversation.contact_id, line, source="cart", message_id=message.id
            )
        assert refused.value.field == "message_id"


def test_anonymising_keeps_the_orders_but_erases_their_notes(app, database):
    from sigdesk.contacts.commands import anonymise

    with database.session() as session:
        who = factories.contact(session, name="Maria")
        order = commands.create_order(
            session,
            agent(session),
            who.id,
            [LineIn(description="Cake", quantity=1, unit_price=20)],
            source="agent",
            notes="Maria's birthday, ring twice",
        )
        commands.set_order_status(session, agent(session), order.id, "cancelled", note="Maria called")
        contact_id, order_id = who.id, order.id
    with database.session() as session:
        anonymise(session, Actor.system("cli"), contact_id, app.extensions["sigdesk"].config.data_dir)
    with database.session() as session:
        order = session.get(Order, order_id)
        assert order is not None and order.notes is None and order.total_minor == 2000
        notes = session.scalars(select(OrderStatusChange.note).where(OrderStatusChange.order_id == order_id)).all()
        assert notes == [None, None]
        assert session.get(Contact, contact_id) is not None


def _zone(session, name: str) -> None:
    from sigdesk.models import Setting

    session.add(Setting(key="general.timezone", value=name, is_secret=False))
    session.flush()


def test_an_orders_date_alone_is_that_day_in_the_business_time_zone_whatever_its_offset(database):
    with database.session() as session:
        _zone(session, "Pacific/Auckland")  # UTC+12 in June, +13 in December
        assert commands.order_moment(session, "2026-06-01") == (
            datetime(2026, 5, 31, 12, tzinfo=timezone.utc),
            datetime(2026, 6, 1).date(),
        )
        assert commands.order_moment(session, datetime(2026, 6, 1).date()) == commands.order_moment(
            session, "2026/06/01"
        )
        # a date and time without a zone is the business's wall clock; with one, that moment
        assert commands.order_moment(session, "2026-06-01 09:30")[0] == datetime(
            2026, 5, 31, 21, 30, tzinfo=timezone.utc
        )
        assert commands.order_moment(session, datetime(2026, 6, 1, 9, 30)) == commands.order_moment(
            session, "2026-06-01T09:30:00"
        )
        at, day = commands.order_moment(session, "2026-06-01T20:00:00.9Z")
        assert (at, str(day)) == (datetime(2026, 6, 1, 20, tzinfo=timezone.utc), "2026-06-02")
        # today's date is never "in the future", however early in the morning it is there
        today = datetime.now(commands.business_zone(session)).date()
        assert commands.order_moment(session, today)[1] == today
        assert commands.order_moment(session, today.isoformat())[1] == today


def test_an_orders_moment_is_refused_in_the_future_beyond_a_little_clock_skew_before_1970_or_unreadable(database):
    with database.session() as session:
        _zone(session, "Pacific/Kiritimati")  # UTC+14: the edge of the calendar
        now = datetime(2026, 6, 1, 10, tzinfo=timezone.utc)
        assert commands.order_moment(session, now + timedelta(minutes=4), now=now)[0] == now + timedelta(minutes=4)
        tomorrow_there = (now + timedelta(hours=14, days=1)).date()
        for value in (now + timedelta(minutes=6), tomorrow_there, "9999-12-31T23:59:59", "9999-12-31"):
            with pytest.raises(UserError) as refused:
                commands.order_moment(session, value, now=now)
            assert (refused.value.field, "future" in str(refused.value)) == ("ordered_at", True), value
        for value in ("0001-01-01", "1969-12-31T23:00Z", datetime(1, 1, 1, tzinfo=timezone.utc)):
            with pytest.raises(UserError, match="1970"):
                commands.order_moment(session, value, now=now)
        for value in ("yesterday", "2026-13-01", "x" * 500, 20260601, None):
            with pytest.raises(UserError) as refused:
                commands.order_moment(session, value, "lines.0.when", now=now)
            assert refused.value.field == "lines.0.when"


def test_an_order_dated_by_a_day_alone_keeps_that_day_on_create_and_update(database):
    with database.session() as session:
        _zone(session, "Pacific/Auckland")
        contact_id = factories.contact(session).id
        line = [LineIn(description="x", quantity=1, unit_price=1)]
        order = commands.create_order(session, agent(session), contact_id, line, source="api", ordered_at="2026-06-01")
        assert (str(order.ordered_on), order.ordered_at) == (
            "2026-06-01",
            datetime(2026, 5, 31, 12, tzinfo=timezone.utc),
        )
        commands.update_order(session, agent(session), order.id, ordered_at=datetime(2026, 7, 3).date())
        assert str(order.ordered_on) == "2026-07-03"


def test_numbers_no_line_or_order_can_hold_are_refused_naming_the_field(database):
    with database.session() as session:
        contact_id = factories.contact(session).id
    cases = [
        # LineIn refuses them itself; a caller may still build one without validation, or give a dict
        (
            [LineIn.model_construct(description="x", quantity=Decimal("1e30"), unit_price=Decimal(1))],
            "lines.0.quantity",
        ),
        ([{"description": "x", "quantity": Decimal("1E+999999999"), "unit_price": 1}], "lines.0.quantity"),
        ([LineIn(description="x", quantity=1, unit_price="1e999999")], "lines.0.unit_price"),
        (
            [
                LineIn(description="x", quantity=1, unit_price=1),
                LineIn(description="y", quantity=999999999, unit_price=10_000_000_000),
            ],
            "lines.1.quantity",
        ),  # 10^21 cents: more than a BigInteger holds
        ([LineIn(description="x", quantity=6, unit_price=1_000_000_000)] * 2, "lines"),
    ]
    for lines, field in cases:
        with pytest.raises(UserError) as refused, database.session() as session:
            commands.create_order(session, agent(session), contact_id, lines, source="agent", currency="EUR")
        assert refused.value.field == field, lines
    assert _stored(database)[0] == 0
    for value in ("1e30", Decimal("1e30"), 10**5000, 1e300, "1e-999999999"):
        with pytest.raises(UserError) as refused:
            commands.parse_quantity(value, "lines.3.quantity")
        assert refused.value.field == "lines.3.quantity"
