"""Importing an order history: lines grouped into orders by order_ref, contacts found or created by phone, days in
the business time zone, sequential numbers shared with other writers, every bad line refused with its reason
(and nothing else stored), one audit entry and one event per import, and undo of the whole import."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.errors import UserError
from sigdesk.imports import commands
from sigdesk.models import Contact, ImportJob, Order, OrderLine, OrderStatusChange, Setting
from tests import factories
from tests.commanding import audit, events
from tests.imports.helpers import finish, refused, run_kind, start_kind

pytestmark = pytest.mark.database
HEADER = "phone,ordered_at,sku,quantity,unit_price,currency,order_ref\n"
EUR = {"options": {"currency": "EUR", "country": "DE"}}


@pytest.fixture
def db(app):
    return app.extensions["sigdesk"].database


@pytest.fixture
def water(db):
    with db.session() as session:
        factories.product(session, sku="WATER20", name="Water 20 L", price_minor=350, currency="EUR")
        factories.product(session, sku="CUP", name="Cups", price_minor=100, currency="USD")
        session.commit()


def orders(db) -> list[Order]:
    with db.session() as session:
        return list(session.scalars(select(Order).order_by(Order.number)))


def lines_of(db, order_id: int) -> list[OrderLine]:
    with db.session() as session:
        return list(
            session.scalars(select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position))
        )


def test_lines_with_one_order_ref_make_one_order_with_totals_history_and_the_next_numbers(app, db, water):
    with db.session() as session:
        factories.order(session)
        session.commit()
    data = (
        HEADER + "+49 170 1234567,2025-03-01,WATER20,2,,,A-1\n"
        "+49 170 1234567,2025-03-01,,1,4.25,EUR,A-1\n"
        "0170 7654321,2025-03-02 18:30,WATER20,1,3.00,,A-2\n"
    ).encode()
    job = run_kind(app, "orders", "history.csv", data, **EUR)
    assert (job.state, job.created, job.lines, job.contacts_created, job.rejected) == ("done", 2, 3, 2, 0)
    first, second = [o for o in orders(db) if o.external_ref]
    assert (first.number, second.number) == (1002, 1003)
    assert (first.external_ref, first.status, first.currency, first.total_minor) == ("A-1", "delivered", "EUR", 1125)
    assert first.ordered_on == date(2025, 3, 1)
    assert [(line.sku, line.quantity, line.unit_price_minor, line.total_minor) for line in lines_of(db, first.id)] == [
        ("WATER20", Decimal("2.000"), 350, 700),
        (None, Decimal("1.000"), 425, 425),
    ]
    second_line = lines_of(db, second.id)[0]
    assert (second_line.list_price_minor, second_line.price_reason, second.total_minor) == (350, "Imported price", 300)
    with db.session() as session:
        history = session.scalars(select(OrderStatusChange.to_status).order_by(OrderStatusChange.id)).all()
        phones = set(session.scalars(select(Contact.wa_id)))
    assert history.count("delivered") >= 2
    assert {"491701234567", "491707654321"} <= phones
    assert events(app, "orders.imported") == [{"count": 2}]
    assert [entry.detail["orders"] for entry in audit(app, "orders.import.finish")] == [2]


def test_the_day_of_an_order_is_its_day_in_the_business_time_zone(app, db):
    with db.session() as session:
        session.add(Setting(key="general.timezone", value="Asia/Kathmandu", is_secret=False))
        session.commit()
    data = (
        b"phone,ordered_at,amount,order_ref\n"
        b"+491701234567,2025-03-01T20:00:00+00:00,10,Z1\n"
        b"+491701234567,2025-03-01 20:00,10,Z2\n"
        b"+491701234567,2025-03-01,10,Z3\n"
    )
    job = run_kind(app, "orders", "tz.csv", data, **EUR)
    assert job.rejected == 0
    by_ref = {o.external_ref: o for o in orders(db)}
    assert by_ref["Z1"].ordered_on == date(2025, 3, 2)  # 20:00 UTC is 01:45 the next day in Kathmandu
    assert by_ref["Z2"].ordered_on == date(2025, 3, 1)
    assert by_ref["Z3"].ordered_on == date(2025, 3, 1)


def test_an_existing_contact_is_used_and_a_new_number_is_created_in_the_default_country(app, db):
    with db.session() as session:
        factories.contact(session, wa_id="491701234567", name="Ann")
        session.commit()
    data = b"phone,ordered_at,amount\n0170 1234567,2025-01-05,9.99\n0170 5555555,2025-01-06,1\n"
    job = run_kind(app, "orders", "totals.csv", data, **EUR)
    assert (job.created, job.lines, job.contacts_created) == (2, 2, 1)
    with db.session() as session:
        owners = session.execute(select(Contact.wa_id, Contact.profile_name).join(Order)).all()
    assert sorted(owners) == [("491701234567", "Ann"), ("491705555555", None)]


BAD = (
    ("+491701234567,2025-03-01,WATER20,-2,3.50,EUR,R", "negative"),
    ("+491701234567,2025-03-01,WATER20,0,3.50,EUR,R", "more than 0"),
    ("+491701234567,2025-03-01,WATER20,two,3.50,EUR,R", "not a quantity"),
    ("+491701234567,2025-03-01,WATER20,1,-3.50,EUR,R", "cannot be negative"),
    ("+491701234567,2025-03-01,WATER20,1,3.5.0,EUR,R", "not an amount"),
    ("+491701234567,2025-03-01,WATER20,1,3.505,EUR,R", "at most 2 decimals"),
    ("+491701234567,2025-03-01,NOPE,1,3.50,EUR,R", "no product with the SKU 'NOPE'"),
    ("+491701234567,2999-01-01,WATER20,1,3.50,EUR,R", "in the future"),
    ("+491701234567,01/02/2025x,WATER20,1,3.50,EUR,R", "is not a date"),
    ("+491701234567,2025-03-01,WATER20,1,3.50,EURO,R", "not a currency"),
    ("12,2025-03-01,WATER20,1,3.50,EUR,R", "phone"),
    (",2025-03-01,WATER20,1,3.50,EUR,R", "no phone number"),
    ("+491701234567,2025-03-01,CUP,1,,EUR,R", "priced in USD"),
    ("+491701234567,2025-03-01,WATER20,1,3.50,EUR,R,surplus", "cells"),
)


def test_every_bad_line_is_refused_with_its_reason_and_stores_nothing(app, db, water):
    data = (HEADER + "".join(row + "\n" for row, _reason in BAD) + "+491709999999,2025-03-01,WATER20,1,,,OK\n").encode()
    job = run_kind(app, "orders", "bad.csv", data, **EUR)
    assert (job.state, job.created, job.rejected) == ("done", 1, len(BAD))
    reasons = refused(app, job.id)
    for line, (_row, reason) in enumerate(BAD, start=2):
        assert reason in reasons[line], (line, reasons[line])
    assert [o.external_ref for o in orders(db)] == ["OK"]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(OrderLine)) == 1


def test_an_order_ref_for_two_phones_is_refused_as_a_whole(app, db, water):
    data = (
        HEADER + "+491701234567,2025-03-01,WATER20,1,,,X\n"
        "+491707654321,2025-03-01,WATER20,1,,,X\n"
        "+491701234567,2025-03-01,WATER20,1,,,Y\n"
    ).encode()
    job = run_kind(app, "orders", "two.csv", data, **EUR)
    reasons = refused(app, job.id)
    assert sorted(reasons) == [2, 3]
    assert "two phone numbers (lines 2 and 3)" in reasons[2]
    assert [o.external_ref for o in orders(db)] == ["Y"]


def test_a_line_in_another_currency_than_its_order_is_refused_and_the_order_keeps_the_others(app, db, water):
    data = (HEADER + "+491701234567,2025-03-01,,1,2.00,EUR,C\n+491701234567,2025-03-01,,1,2.00,USD,C\n").encode()
    job = run_kind(app, "orders", "cur.csv", data, **EUR)
    assert "in USD but its order (order_ref 'C') is in EUR" in refused(app, job.id)[3]
    (order,) = orders(db)
    assert (order.total_minor, job.lines) == (200, 1)


def test_lines_of_one_order_in_later_batches_join_it_and_a_second_run_of_the_file_is_refused(
    app, db, water, monkeypatch
):
    monkeypatch.setattr(commands, "BATCH", 2)
    data = (
        HEADER + "+491701234567,2025-03-01,WATER20,1,,,J\n"
        "+491701234567,2025-03-02,WATER20,1,,,K\n"
        "+491701234567,2025-03-01,WATER20,2,,,J\n"
        "+491701234567,2025-03-03,WATER20,1,,,L\n"
        "+491707654321,2025-03-01,WATER20,2,,,J\n"
    ).encode()
    job = run_kind(app, "orders", "split.csv", data, **EUR)
    assert (job.created, job.lines, job.rejected) == (3, 4, 1)
    assert "another phone number" in refused(app, job.id)[6]
    by_ref = {o.external_ref: o for o in orders(db)}
    assert by_ref["J"].total_minor == 1050
    assert [line.position for line in lines_of(db, by_ref["J"].id)] == [1, 2]
    again = run_kind(app, "orders", "split.csv", data, **EUR)
    assert (again.created, again.rejected) == (0, 5)
    assert "is already order #" in refused(app, again.id)[2]


def test_a_status_column_maps_to_the_order_status(app, db):
    data = b"phone,ordered_at,amount,status\n+491701234567,2025-03-01,5,Cancelled\n+491701234567,2025-03-01,5,lost\n"
    job = run_kind(app, "orders", "status.csv", data, **EUR)
    assert [o.status for o in orders(db)] == ["cancelled"]
    assert "not an order status" in refused(app, job.id)[3]


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        (b"phone,amount\n+491701234567,5\n", {}, "ordered_at"),
        (b"when,amount\n2025-01-01,5\n", {}, "phone"),
        (b"phone,ordered_at\n+491701234567,2025-01-01\n", {}, "sku, unit_price or amount"),
        (b"phone,ordered_at,price,amount\n+491701234567,2025-01-01,1,1\n", {}, "not both"),
        (b"phone,ordered_at,amount\n+491701234567,2025-01-01,1\n", {"currency": "XX"}, "not a currency"),
        (b"phone,ordered_at,amount\n+491701234567,2025-01-01,1\n", {"status": "lost"}, "not an order status"),
        (b"phone,ordered_at,amount\n+491701234567,2025-01-01,1\n", {"speed": "1"}, "not an option"),
    ],
)
def test_a_mapping_or_option_that_cannot_work_is_refused_before_anything_runs(app, db, data, options, message):
    with pytest.raises(UserError, match=message):
        start_kind(app, "orders", "m.csv", data, options=options)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_undo_deletes_the_imported_orders_and_the_contacts_it_created(app, db, water):
    with db.session() as session:
        kept = factories.contact(session, wa_id="491701234567")
        factories.order(session, who=kept)
        session.commit()
    data = (HEADER + "+491701234567,2025-03-01,WATER20,1,,,U1\n+491707654321,2025-03-01,WATER20,1,,,U2\n").encode()
    job = run_kind(app, "orders", "undo.csv", data, **EUR)
    with db.session() as session:
        commands.undo_import(session, Actor.system("cli"), job.id)
        session.commit()
    finish(app)
    with db.session() as session:
        job = session.get(ImportJob, job.id)
        assert (job.state, job.removed, job.deleted) == ("undone", 2, 1)
        assert session.scalar(select(func.count()).select_from(Order)) == 1
        assert set(session.scalars(select(Contact.wa_id))) == {"491701234567"}
    assert [event["removed"] for event in events(app, "orders.import_undone")] == [2], "forecasts hear of it"


def test_a_line_giving_its_own_price_for_a_product_priced_in_another_currency_is_refused(app, db, water):
    data = (HEADER + "+491701234567,2025-03-01,CUP,2,1.50,EUR,P\n+491701234567,2025-03-01,CUP,1,1.50,USD,Q\n").encode()
    job = run_kind(app, "orders", "cups.csv", data, **EUR)
    reason = refused(app, job.id)[2]
    assert "the product 'CUP' is priced in USD but the line is in EUR" in reason
    (order,) = orders(db)
    assert (order.external_ref, order.currency) == ("Q", "USD")
    (line,) = lines_of(db, order.id)
    assert (line.unit_price_minor, line.list_price_minor, line.price_reason) == (150, 100, "Imported price")


def test_lines_of_one_order_ref_with_two_dates_are_refused_as_a_whole(app, db, water):
    data = (
        HEADER + "+491701234567,2025-03-01,WATER20,1,,,D\n"
        "+491701234567,2025-03-02,WATER20,1,,,D\n"
        "+491701234567,2025-03-01,WATER20,1,,,E\n"
    ).encode()
    job = run_kind(app, "orders", "dates.csv", data, **EUR)
    reasons = refused(app, job.id)
    assert sorted(reasons) == [2, 3]
    assert "names two dates (lines 2 and 3)" in reasons[2]
    assert [o.external_ref for o in orders(db)] == ["E"]


def test_a_later_line_with_another_date_than_its_order_from_an_earlier_batch_is_refused(app, db, water, monkeypatch):
    monkeypatch.setattr(commands, "BATCH", 2)
    data = (
        HEADER + "+491701234567,2025-03-01,WATER20,1,,,F\n"
        "+491701234567,2025-03-02,WATER20,1,,,G\n"
        "+491701234567,2025-03-05,WATER20,2,,,F\n"
    ).encode()
    job = run_kind(app, "orders", "later.csv", data, **EUR)
    assert "was imported from earlier lines with another date (2025-03-01 00:00 UTC)" in refused(app, job.id)[4]
    by_ref = {o.external_ref: o for o in orders(db)}
    assert (by_ref["F"].total_minor, by_ref["F"].ordered_on) == (350, date(2025, 3, 1))


def test_numbers_too_large_are_refused_row_by_row_and_the_batch_goes_on(app, db, water):
    data = (
        HEADER + "+491701234567,2025-03-01,,999999999,1000000000,EUR,H1\n"
        "+491701234567,2025-03-01,,1,1e999999999,EUR,H2\n"
        "+491701234567,2025-03-01,WATER20,1e999999999,,EUR,H3\n"
        "+491701234567,2025-03-01,,1,1e30,EUR,H4\n"
        "+491701234567,2025-03-01,,1,6000000000,EUR,H5\n"
        "+491701234567,2025-03-01,,1,6000000000,EUR,H5\n"
        "+491701234567,2025-03-01,WATER20,1,,,OK\n"
    ).encode()
    job = run_kind(app, "orders", "huge.csv", data, **EUR)
    assert (job.state, job.created, job.rejected) == ("done", 1, 6)
    reasons = refused(app, job.id)
    assert "line's total" in reasons[2] and "more than SigDesk accepts" in reasons[2]
    assert all("more than SigDesk accepts" in reasons[line] or "too large" in reasons[line] for line in (3, 4, 5))
    assert "total of order_ref 'H5'" in reasons[6] and "total of order_ref 'H5'" in reasons[7]
    assert [o.external_ref for o in orders(db)] == ["OK"]


def test_rows_without_an_order_ref_make_one_order_per_phone_and_moment_and_a_second_run_is_refused(app, db, water):
    data = (
        b"phone,ordered_at,sku,quantity\n"
        b"+491701234567,2025-03-01,WATER20,1\n"
        b"+491701234567,2025-03-01,WATER20,2\n"
        b"+491701234567,2025-03-02 10:00,WATER20,1\n"
        b"+491707654321,2025-03-01,WATER20,1\n"
    )
    job = run_kind(app, "orders", "noref.csv", data, **EUR)
    assert (job.created, job.lines, job.rejected) == (3, 4, 0)
    first = orders(db)[0]
    assert first.total_minor == 1050 and first.external_ref.startswith("imp-")
    assert "491701234567" not in first.external_ref
    again = run_kind(app, "orders", "noref.csv", data, **EUR)
    assert (again.created, again.rejected) == (0, 4)
    assert "already order #" in refused(app, again.id)[2]
    assert len(orders(db)) == 3


def test_each_kind_has_its_own_import_permission(app, db, monkeypatch):
    from sigdesk import roles
    from sigdesk.imports.kinds import kind_of

    assert [kind_of(name).permission for name in ("contacts", "products", "orders")] == [
        "contacts.import",
        "products.import",
        "orders.import",
    ]
    assert roles.can("admin", "orders.import") and roles.can("owner", "products.import")
    assert not roles.can("agent", "orders.import") and not roles.can("agent", "products.import")
    with db.session() as session:
        admin = factories.user(session, "admin")
        session.commit()
        session.refresh(admin)
        session.expunge(admin)
    actor = Actor(admin, "web")
    monkeypatch.setitem(roles.PERMISSIONS, "admin", roles.PERMISSIONS["admin"] - {"orders.import"})
    data = b"phone,ordered_at,amount\n+491701234567,2025-01-01,1\n"
    with pytest.raises(UserError, match="does not allow importing orders") as refusal:
        start_kind(app, "orders", "o.csv", data, actor=actor, **EUR)
    assert refusal.value.status == 403
    start_kind(app, "products", "p.csv", b"sku,name\nA,Apple\n", actor=actor)


def test_what_is_particular_to_orders_is_a_hook_of_their_kind(app, db):
    import inspect

    from sigdesk.imports import views
    from sigdesk.imports.kinds import kind_of
    from sigdesk.sales.money import shop_currency

    with db.session() as session:
        currency = shop_currency(session)
        assert kind_of("orders").form_defaults(session) == {"currency": currency, "status": "delivered"}
        assert kind_of("contacts").form_defaults(session) == {}
    assert kind_of("orders").form_options() == ("country", "currency", "status")
    assert kind_of("products").undone_events(ImportJob(id=1, removed=2)) == []
    assert "orders" not in inspect.getsource(commands._finish_undo)
    assert '"orders"' not in inspect.getsource(views) and "default_currency" not in inspect.getsource(views)


def test_the_import_reads_an_order_moment_as_the_api_does(app, db):
    from datetime import datetime, timedelta, timezone

    from sigdesk.sales.commands import order_moment

    with db.session() as session:
        session.add(Setting(key="general.timezone", value="America/Sao_Paulo", is_secret=False))
        session.commit()
    soon = (datetime.now(timezone.utc) + timedelta(minutes=2)).replace(microsecond=0).isoformat()
    data = (
        "phone,ordered_at,amount,order_ref\n"
        f"+491701234567,2025/03/01,10,M1\n+491701234567,2025-03-01T02:00:00Z,10,M2\n+491701234567,{soon},10,M3\n"
    ).encode()
    job = run_kind(app, "orders", "moments.csv", data, **EUR)
    assert job.rejected == 0, refused(app, job.id)
    with db.session() as session:
        for order in orders(db):
            raw = {"M1": "2025/03/01", "M2": "2025-03-01T02:00:00Z", "M3": soon}[order.external_ref]
            assert (order.ordered_at, order.ordered_on) == order_moment(session, raw), order.external_ref
