"""Reorder predictions in SigDesk: histories read from the orders tables (sold orders before the day only),
a refresh that stores every customer's forecast with its progress, order events asking for a debounced
refresh that the worker runs a step at a time, the nightly refresh, restarts and the CLI."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from sigdesk.cli import main
from sigdesk.models import PredictionRefresh, ReorderChance, ReorderForecast, ReorderProduct
from sigdesk.predictions import services, store
from sigdesk.predictions.model import ONE_ORDER
from tests import factories

pytestmark = pytest.mark.database

TODAY = date(2026, 12, 7)


def session_of(app):
    return app.extensions["sigdesk"].database.session()


def shop(session, today: date, regulars: int = 6) -> dict:
    """Regular water customers (every 14 days, the last order 10 days ago), one who ordered once, one whose
    only order was cancelled, and one who orders on `today` (which no forecast as of today may know)."""
    water = factories.product(session, sku="WATER-20L", name="Water 20 L", reorder_days=14)
    bread = factories.product(session, sku="BREAD", name="Bread")
    people = {"regulars": []}
    for n in range(regulars):
        who = factories.contact(session, wa_id=f"4917000000{n:02d}", name=f"Regular {n}")
        for k in range(9):
            on = today - timedelta(days=10 + 14 * k + (n % 3))
            factories.order(session, who, on, [(water, 1, 500)] + ([(bread, 2, 150)] if k % 3 == 0 else []))
        people["regulars"].append(who)
    people["once"] = factories.contact(session, wa_id="491700000100", name="Once")
    factories.order(session, people["once"], today - timedelta(days=20), [(bread, 1, 150)])
    people["cancelled"] = factories.contact(session, wa_id="491700000200", name="Cancelled")
    factories.order(session, people["cancelled"], today - timedelta(days=30), status="cancelled")
    factories.order(session, people["cancelled"], today - timedelta(days=15), status="returned")
    people["today"] = factories.contact(session, wa_id="491700000300", name="Today")
    factories.order(session, people["today"], today, [(water, 1, 500)])
    people["water"], people["bread"] = water, bread
    session.commit()
    return people


def at(today: date, monkeypatch) -> None:
    monkeypatch.setattr(services, "today", lambda session: today)


def test_histories_hold_sold_orders_dated_before_the_day_with_their_products(app):
    with session_of(app) as session:
        water = factories.product(session, sku="W", reorder_days=14)
        bread = factories.product(session, sku="B")
        who = factories.contact(session)
        other = factories.contact(session)
        factories.order(session, who, date(2026, 1, 1), [(water, 1, 500), (bread, 1, 100), (water, 2, 500)])
        factories.order(session, who, date(2026, 1, 1), [(None, 1, 900)])
        factories.order(session, who, date(2026, 1, 15), [(water, 1, 500)])
        factories.order(session, who, date(2026, 1, 20), [(bread, 1, 100)], status="cancelled")
        factories.order(session, who, date(2026, 2, 1), [(bread, 1, 100)])
        factories.order(session, other, date(2026, 2, 1))
        session.commit()
        found = list(store.read_histories(session, date(2026, 2, 1)))
    assert [history.contact_id for history in found] == [who.id]
    history = found[0]
    assert list(history.days) == [date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 15)]
    assert {sku: list(days) for sku, days in history.products.items()} == {
        "W": [date(2026, 1, 1), date(2026, 1, 15)],
        "B": [date(2026, 1, 1)],
    }
    assert dict(history.reorder_days) == {"W": 14}


def test_a_refresh_stores_every_customers_forecast_and_reports_its_progress(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY)
        seen: list[tuple[int, int]] = []
        run = services.refresh_now(session, "cli", lambda done, total: seen.append((done, total)))
        assert (run.state, run.as_of, run.total, run.processed, run.horizons) == ("done", TODAY, 7, 7, "7,30,90")
        assert seen[0] == (0, 7) and seen[-1] == (7, 7)
        forecasts = {row.contact_id: row for row in session.scalars(select(ReorderForecast))}
        assert set(forecasts) == {who.id for who in people["regulars"]} | {people["once"].id}
        once = forecasts[people["once"].id]
        assert (once.next_order_on, once.reason, once.orders) == (None, ONE_ORDER, 1)
        regular = forecasts[people["regulars"][0].id]
        assert regular.next_order_on is not None and TODAY <= regular.next_order_on <= TODAY + timedelta(days=10)
        assert regular.reason is None and regular.orders == 9 and not regular.at_risk
        assert session.scalar(select(func.count()).select_from(ReorderChance)) == 7 * 3
        products = {
            row.sku: row.next_on
            for row in session.scalars(
                select(ReorderProduct).where(ReorderProduct.contact_id == people["regulars"][0].id)
            )
        }
        assert TODAY <= products["WATER-20L"] <= TODAY + timedelta(days=10)
        status = services.status(session)
        assert (status.state, status.customers, status.as_of) == ("done", 7, TODAY)
        assert services.latest_accuracy(session)["enough"] is False


def test_a_second_refresh_replaces_the_first_and_drops_its_rows(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        shop(session, TODAY, regulars=2)
        first = services.refresh_now(session, "cli").id
        second = services.refresh_now(session, "cli").id
        assert services.current_run(session).id == second
        assert set(session.scalars(select(ReorderForecast.run_id).distinct())) == {second}
        assert set(session.scalars(select(ReorderChance.run_id).distinct())) == {second}
        assert session.get(PredictionRefresh, first).state == "done"


def test_order_events_ask_for_one_debounced_refresh_that_the_worker_runs_step_by_step(app, monkeypatch):
    at(TODAY, monkeypatch)
    monkeypatch.setattr(services, "STEP", 3)
    consumer = services.OrdersConsumer()
    assert set(consumer.events) <= set(services.ORDER_EVENTS) and "order.created" in consumer.events
    with session_of(app) as session:
        shop(session, TODAY)
        assert consumer(session, [object(), object()]) == 2
        assert consumer(session, [object()]) == 1
        runs = list(session.scalars(select(PredictionRefresh)))
        assert [(run.state, run.reason) for run in runs] == [("queued", "orders")]
        asked = runs[0].requested_at
        assert services.due_run(session, asked + timedelta(seconds=1)) is None
        assert services.due_run(session, asked + services.DEBOUNCE) == runs[0].id
        task = services.RefreshTask()
        task.next_nightly = float("inf")
        monkeypatch.setattr(services, "due_run", lambda session: runs[0].id)
        handled = [task(session)]
        session.expire_all()
        assert session.get(PredictionRefresh, runs[0].id).state == "running"
        while task.refresher.work is not None:
            handled.append(task(session))
            session.expire_all()
            run = session.get(PredictionRefresh, runs[0].id)
            assert run.processed <= run.total == 7
        assert handled == [1, 1, 3, 3, 1, 1, 1]
        assert session.get(PredictionRefresh, runs[0].id).state == "done"


def test_the_day_turning_asks_for_a_refresh_once_and_never_without_orders(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        assert services.ask_nightly(session) is False
        shop(session, TODAY, regulars=1)
        services.refresh_now(session, "cli")
        assert services.ask_nightly(session) is False
        at(TODAY + timedelta(days=1), monkeypatch)
        assert services.ask_nightly(session) is True
        assert services.ask_nightly(session) is False
        queued = session.scalar(select(PredictionRefresh).where(PredictionRefresh.state == "queued"))
        assert queued.reason == "nightly" and services.due_run(session) == queued.id


def test_a_refresh_left_running_by_a_stopped_process_is_failed_and_asked_for_again(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        shop(session, TODAY, regulars=1)
        refresher = services.Refresher()
        run = services.request_refresh(session, "orders")
        session.commit()
        assert refresher.claim(session, run.id) and refresher.step(session) == 1 and refresher.step(session) == 2
        assert services.requeue_interrupted(session) == 1
        session.expire_all()
        stopped = session.get(PredictionRefresh, run.id)
        assert stopped.state == "failed" and "Interrupted" in stopped.error
        assert session.scalar(select(func.count()).select_from(ReorderForecast)) == 0
        assert session.scalar(select(PredictionRefresh.state).where(PredictionRefresh.id > run.id)) == "queued"
        assert services.status(session).state == "queued"


def test_a_refresh_that_breaks_records_why_and_keeps_the_forecasts_before_it(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        shop(session, TODAY, regulars=2)
        good = services.refresh_now(session, "cli").id

        def broken(*args, **kwargs):
            raise ValueError("no")

        monkeypatch.setattr(services, "forecast", broken)
        failed = services.refresh_now(session, "cli")
        assert failed.state == "failed" and failed.error == "The refresh stopped on an error (ValueError)"
        assert services.current_run(session).id == good
        assert set(session.scalars(select(ReorderForecast.run_id).distinct())) == {good}
        assert services.status(session).state == "failed"


def test_the_cli_refreshes_with_progress_and_reports_the_status(app, monkeypatch):
    config = app.extensions["sigdesk"].config
    with session_of(app) as session:
        shop(session, services.today(session), regulars=2)

    def sigdesk(*args: str):
        return CliRunner().invoke(
            main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args]
        )

    before = sigdesk("predictions", "status")
    assert before.exit_code == 0 and "State: none" in before.output
    done = sigdesk("predictions", "refresh")
    assert done.exit_code == 0, done.output
    assert done.output.strip().splitlines()[-1].startswith("3 customers forecast as of ")
    after = sigdesk("predictions", "status")
    assert "State: done" in after.output and "Customers forecast: 3" in after.output
    with session_of(app) as session:
        session.add(PredictionRefresh(state="running", reason="orders", started_at=factories.utcnow(), total=9))
        session.commit()
    busy = sigdesk("predictions", "refresh")
    assert busy.exit_code != 0 and "A refresh is running already" in busy.output


def test_an_order_written_by_the_sales_commands_reaches_the_worker_as_one_refresh(app, monkeypatch):
    from sigdesk.actor import Actor
    from sigdesk.sales import commands as sales
    from sigdesk.sales.schemas import LineIn

    state = app.extensions["sigdesk"]
    with session_of(app) as session:
        state.outbox(session)  # the consumers start reading from here
        people = shop(session, services.today(session), regulars=2)
        for _ in range(2):
            sales.create_order(
                session,
                Actor.system("cli"),
                people["once"].id,
                [LineIn(sku="BREAD", quantity=1)],
                source="agent",
                ordered_at=factories.utcnow() - timedelta(days=2),
            )
        session.commit()
        state.outbox(session)
        run = session.scalar(select(PredictionRefresh))
        assert (run.state, run.reason) == ("queued", "orders")
    monkeypatch.setattr(services, "DEBOUNCE", timedelta(0))
    task = next(item.run for item in state.worker.tasks if item.name == "reorder predictions")
    with session_of(app) as session:
        while task(session):
            pass
        session.expire_all()
        assert session.get(PredictionRefresh, run.id).state == "done"
        once = session.scalar(select(ReorderForecast).where(ReorderForecast.contact_id == people["once"].id))
        assert once.orders == 3 and once.reason is None


def test_a_later_refresh_the_same_day_measures_the_accuracy_again_when_the_orders_changed(app, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY, regulars=2)
        services.refresh_now(session, "cli")
        before = {window["days"]: window["buyers"] for window in services.latest_accuracy(session)["windows"]}
        newcomer = factories.contact(session, wa_id="491700000400", name="Imported later")
        for days_ago in (80, 50, 20, 5):
            factories.order(session, newcomer, TODAY - timedelta(days=days_ago), [(people["water"], 1, 500)])
        session.commit()
        services.refresh_now(session, "cli")
        after = {window["days"]: window["buyers"] for window in services.latest_accuracy(session)["windows"]}
    assert after[30] == before[30] + 1, "an import after the day's first refresh must not keep its old figures"
