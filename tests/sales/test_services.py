"""The sales read side and what other features hear of orders: lists paged by keyset, a contact's purchase
history with its figures, the merge mover, the "Has ordered" lead score rule, the timeline and exports."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.timeline import timeline
from sigdesk.errors import NotFound, UserError
from sigdesk.exports.services import export
from sigdesk.merge.commands import merge_contacts
from sigdesk.models.sales import Order
from sigdesk.sales import services
from sigdesk.sales.services import NOT_ENOUGH_HISTORY
from tests import factories
from tests.lead_score.helpers import feed, rule, score

pytestmark = pytest.mark.database

DAY = date(2026, 1, 5)


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


def test_purchase_history_counts_sold_orders_only_and_finds_the_usual_products_and_interval(database):
    with database.session() as session:
        who = factories.contact(session, name="Rita")
        water = factories.product(session, sku="WATER", name="Water 20 L", price_minor=250)
        bread = factories.product(session, sku="BREAD", name="Bread", price_minor=300)
        for days, status in ((0, "delivered"), (14, "delivered"), (30, "paid"), (31, "cancelled")):
            factories.order(session, who, DAY + timedelta(days=days), [(water, 2, 250)], status=status)
        factories.order(session, who, DAY + timedelta(days=14), [(bread, 1, 300)])
        factories.order(session, who, DAY + timedelta(days=20), [(None, 1, 999)], currency="USD", status="returned")
        history = services.purchase_history(session, who.id, limit=2)
    assert (history.contact_name, history.order_count, history.sold_count) == ("Rita", 6, 4)
    assert [order.ordered_on for order in history.orders] == [DAY + timedelta(days=31), DAY + timedelta(days=30)]
    assert history.next_cursor is not None
    [eur] = history.totals  # the returned USD order counts nowhere
    assert (eur.currency, eur.orders, eur.lifetime_value, eur.average_order_value) == ("EUR", 4, "18.00", "4.50")
    assert [(item.sku, item.orders, item.quantity) for item in history.usual_products] == [
        ("WATER", 3, "6"),
        ("BREAD", 1, "1"),
    ]
    assert history.typical_interval_days == 15.0  # sold on days 0, 14 and 30: gaps of 14 and 16 days
    assert history.interval_note is None


def test_one_order_day_is_not_enough_history_for_an_interval(database):
    with database.session() as session:
        who = factories.contact(session)
        factories.order(session, who, DAY)
        factories.order(session, who, DAY)
        history = services.purchase_history(session, who.id)
        assert history.typical_interval_days is None and history.interval_note == NOT_ENOUGH_HISTORY
        nobody = factories.contact(session)
        empty = services.purchase_history(session, nobody.id)
        assert (empty.order_count, empty.totals, empty.usual_products, empty.orders) == (0, [], [], [])
        with pytest.raises(NotFound):
            services.purchase_history(session, 999999)


def test_orders_list_newest_first_in_pages_filtered_by_contact_status_and_days(database):
    with database.session() as session:
        one, two = factories.contact(session), factories.contact(session)
        for days in range(5):
            factories.order(session, one, DAY + timedelta(days=days), status="paid" if days % 2 else "delivered")
        factories.order(session, two, DAY)
        seen, cursor = [], None
        while True:
            found = services.list_orders(session, contact_id=one.id, cursor=cursor, limit=2)
            seen += [order.ordered_on for order in found.items]
            cursor = found.next_cursor
            if cursor is None:
                break
        assert seen == [DAY + timedelta(days=days) for days in (4, 3, 2, 1, 0)]
        paid = services.list_orders(
            session, status="paid", since=DAY + timedelta(days=2), until=DAY + timedelta(days=4)
        )
        assert [order.ordered_on for order in paid.items] == [DAY + timedelta(days=3)]
        assert len(services.list_orders(session, until=DAY).items) == 2
        with pytest.raises(UserError) as refused:
            services.list_orders(session, cursor="not-a-cursor")
        assert refused.value.field == "cursor"


def test_products_are_found_by_sku_or_name_category_and_flags(database):
    with database.session() as session:
        factories.product(session, sku="WAT-20", name="Water 20 L", category="Water")
        factories.product(session, sku="BRD", name="Sourdough", category="Bread", active=False)
        factories.product(session, sku="X1", name="Unknown product X1", placeholder=True, price_minor=None)
        assert [p.sku for p in services.list_products(session, q="sour").items] == ["BRD"]
        assert [p.sku for p in services.list_products(session, q="wat").items] == ["WAT-20"]
        assert [p.sku for p in services.list_products(session, category="Water").items] == ["WAT-20"]
        assert [p.sku for p in services.list_products(session, active=False).items] == ["BRD"]
        assert [p.sku for p in services.list_products(session, placeholder=True).items] == ["X1"]
        first = services.list_products(session, limit=2)
        rest = services.list_products(session, cursor=first.next_cursor, limit=2)
        assert len(first.items) == 2 and [p.sku for p in rest.items] == ["WAT-20"] and rest.next_cursor is None
        assert services.list_products(session, q="%").items == []


def test_a_merge_moves_the_merged_contacts_orders_to_the_kept_one(database):
    with database.session() as session:
        kept, merged = factories.contact(session, "491700000001"), factories.contact(session, "491700000002")
        mine, theirs = factories.order(session, kept, DAY), factories.order(session, merged, DAY)
        merge_contacts(session, Actor(factories.user(session, "admin"), "cli"), kept.id, merged.id)
        ids = {mine.id, theirs.id}
        assert set(session.scalars(select(Order.id).where(Order.contact_id == kept.id))) == ids


def test_the_has_ordered_rule_scores_contacts_with_a_sold_order(app, database):
    with database.session() as session:
        buyer, cancelled, none = factories.contact(session), factories.contact(session), factories.contact(session)
        factories.order(session, buyer, DAY)
        factories.order(session, cancelled, DAY, status="cancelled")
        ids = buyer.id, cancelled.id, none.id
    feed(app)
    rule(app, "has_ordered", 30, label="Customer")
    feed(app)
    assert [score(app, contact_id)[0] for contact_id in ids] == [30, 0, 0]


def test_the_timeline_shows_a_contacts_orders(database):
    with database.session() as session:
        who = factories.contact(session)
        water = factories.product(session, sku="WATER", name="Water 20 L")
        order = factories.order(session, who, DAY, [(water, 2, 250)])
        viewer = factories.user(session, "agent")
        entries = [entry for entry in timeline(session, viewer, who.id).items if entry.source == "order"]
    assert [(entry.id, entry.kind, entry.detail) for entry in entries] == [
        (order.id, "order.delivered", "2 × Water 20 L")
    ]
    assert entries[0].title.startswith(f"Order #{order.number}: €5.00")


def test_orders_export_as_json_and_as_csv_with_a_row_per_line_and_formulas_escaped(database, tmp_path):
    with database.session() as session:
        who = factories.contact(session, name="=cmd|' /C calc'!A0")
        water = factories.product(session, sku="WATER", name="Water 20 L")
        factories.order(session, who, DAY, [(water, 2, 250), (None, 1, 100)], notes="-2+3")
        assert export(session, "orders", "json", tmp_path / "orders.jsonl") == {"orders": 1}
        assert export(session, "orders", "csv", tmp_path / "orders.csv") == {"orders": 1}
    [record] = [json.loads(line) for line in (tmp_path / "orders.jsonl").read_text().splitlines()]
    assert record["total"] == "6.00" and [line["sku"] for line in record["lines"]] == ["WATER", None]
    rows = list(csv.DictReader((tmp_path / "orders.csv").open(encoding="utf-8")))
    assert [(row["number"], row["line.description"], row["line.quantity"]) for row in rows] == [
        ("1001", "Water 20 L", "2"),
        ("1001", "Goods", "1"),
    ]
    assert rows[0]["contact_name"].startswith("'=") and rows[0]["notes"] == "'-2+3" and rows[0]["total_minor"] == "600"


def test_order_events_rescore_the_has_ordered_rule_through_its_plug_not_names_the_lead_score_keeps(app, database):
    from sigdesk.events.catalogue import OrdersImported
    from sigdesk.events.outbox import record
    from sigdesk.lead_score import scoring
    from sigdesk.models import Contact
    from sigdesk.sales import commands
    from sigdesk.sales.schemas import LineIn

    assert not [name for name in (*scoring.CONTACT_EVENTS, *scoring.EVERYONE_EVENTS) if name.startswith("order")]
    with database.session() as session:
        buyer, imported = factories.contact(session), factories.contact(session)
        session.commit()
    feed(app)
    rule(app, "has_ordered", 30, label="Customer")
    feed(app)
    system = Actor.system("cli")
    with database.session() as session:
        order = commands.create_order(
            session, system, buyer.id, [LineIn(description="x", quantity=1, unit_price=1)], source="agent"
        )
        session.commit()
    feed(app)
    assert score(app, buyer.id)[0] == 30
    with database.session() as session:
        commands.set_order_status(session, system, order.id, "cancelled")
        session.commit()
    feed(app)
    assert score(app, buyer.id)[0] == 0
    with database.session() as session:  # an import writes its orders in bulk and announces them once
        factories.order(session, session.get(Contact, imported.id), DAY)
        record(session, OrdersImported(1))
        session.commit()
    feed(app)
    assert score(app, imported.id)[0] == 30
