"""Between the orders tables and the engine: histories read set-based, forecasts written in batches.

Histories are read in one ordered pass over orders (with their lines' products), streamed a few thousand rows
at a time and folded into one compact History per contact, so 300,000 orders never become ORM objects. Only
orders dated before `as_of` count, and cancelled or returned ones not at all (sigdesk.models.sales.NOT_SOLD).
Forecasts are written under their refresh run's id (sigdesk.models.predictions), a batch per statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date

from sqlalchemy import ColumnElement, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from sigdesk.db import write_lock
from sigdesk.models import (
    Order,
    OrderLine,
    OrderStatusChange,
    Product,
    ReorderChance,
    ReorderForecast,
    ReorderProduct,
)
from sigdesk.models.sales import NOT_SOLD
from sigdesk.predictions.model import Forecast, History

STREAM_ROWS = 5000
DELETE_BATCH = 10000  # contact ids per DELETE


def sold_before(as_of: date) -> ColumnElement[bool]:
    """The orders a prediction as of `as_of` may know: dated before it, and not cancelled or returned."""
    return (Order.ordered_on < as_of) & Order.status.not_in(NOT_SOLD)


def line_sku() -> ColumnElement[str | None]:
    """A line's product as the catalogue names it now, else the sku the line kept (the product was deleted)."""
    return func.coalesce(Product.sku, OrderLine.sku)


def reorder_days(session: Session) -> dict[str, int]:
    """The owner's typical reorder interval per sku, where set."""
    rows = session.execute(select(Product.sku, Product.reorder_days).where(Product.reorder_days.is_not(None)))
    return {sku: days for sku, days in rows}


def _histories(rows: Iterable[Sequence], typical: dict[str, int]) -> Iterator[History]:
    contact_id: int | None = None
    days: list[date] = []
    products: dict[str, list[date]] = {}
    order_id: int | None = None
    for row_order, row_contact, day, sku in rows:
        if row_contact != contact_id:
            if contact_id is not None:
                yield _history(contact_id, days, products, typical)
            contact_id, days, products, order_id = row_contact, [], {}, None
        if row_order != order_id:
            order_id = row_order
            days.append(day)
            seen: set[str] = set()
        if sku and sku not in seen:
            seen.add(sku)
            products.setdefault(sku, []).append(day)
    if contact_id is not None:
        yield _history(contact_id, days, products, typical)


def _history(contact_id: int, days: list[date], products: dict[str, list[date]], typical: dict[str, int]) -> History:
    return History(
        contact_id=contact_id,
        days=tuple(days),
        products={sku: tuple(bought) for sku, bought in products.items()},
        reorder_days={sku: typical[sku] for sku in products if sku in typical},
    )


def read_histories(
    session: Session,
    as_of: date,
    contact_ids: Sequence[int] | None = None,
    sku: str | None = None,
    between: tuple[int, int] | None = None,
) -> Iterator[History]:
    """Every customer's history as of `as_of`, by contact id (of `contact_ids` only, of those who bought `sku`
    before it, of the contact ids `between` low and high, when given). The caller ends the reading
    transaction after the last one."""
    typical = reorder_days(session)
    query = (
        select(Order.id, Order.contact_id, Order.ordered_on, line_sku())
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(sold_before(as_of))
        .order_by(Order.contact_id, Order.ordered_on, Order.id)
    )
    if contact_ids is not None:
        query = query.where(Order.contact_id.in_(sorted(set(contact_ids)) or [0]))
    if sku is not None:
        query = query.where(Order.contact_id.in_(buyers_of(sku, as_of)))
    if between is not None:
        query = query.where(Order.contact_id.between(*between))
    rows = session.execute(query.execution_options(yield_per=STREAM_ROWS))
    try:
        yield from _histories(rows, typical)
    finally:
        rows.close()


def buyers_of(sku: str, as_of: date):
    """The contacts who bought `sku` in an order a prediction as of `as_of` may know (a subquery)."""
    return (
        select(Order.contact_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(sold_before(as_of), or_(Product.sku == sku, (OrderLine.sku == sku) & Product.id.is_(None)))
    )


def known_sku(session: Session, sku: str) -> bool:
    """In the catalogue, or on some order line (a product since deleted)."""
    return (
        session.scalar(select(Product.id).where(Product.sku == sku).limit(1)) is not None
        or session.scalar(select(OrderLine.id).where(OrderLine.sku == sku).limit(1)) is not None
    )


def orders_version(session: Session) -> tuple:
    """A cheap fingerprint of everything histories are read from: changes when an order is written, edited,
    has its lines replaced, changes status or is deleted, and when a product is added, edited or deleted (its
    sku and reorder interval feed the histories). Counts and maxima over keys, plus the latest updated_at, so
    no history is read; an edit within the same second as the latest one may go unseen (the on-the-fly cache
    expires within minutes)."""
    orders = session.execute(select(func.count(), func.max(Order.id), func.max(Order.updated_at))).one()
    products = session.execute(select(func.count(), func.max(Product.id), func.max(Product.updated_at))).one()
    lines = session.scalar(select(func.max(OrderLine.id)))
    changes = session.scalar(select(func.max(OrderStatusChange.id)))
    return (*orders, *products, lines, changes)


def first_order_day(session: Session) -> date | None:
    return session.scalar(select(func.min(Order.ordered_on)).where(Order.status.not_in(NOT_SOLD)))


def write_forecasts(
    session: Session,
    run_id: int,
    histories: Sequence[History],
    forecasts: Sequence[Forecast],
) -> None:
    """One statement per table for this batch; the caller holds the write lock and commits."""
    last = {history.contact_id: history for history in histories}
    forecast_rows = []
    chance_rows = []
    product_rows = []
    for item in forecasts:
        history = last[item.contact_id]
        forecast_rows.append(
            {
                "run_id": run_id,
                "contact_id": item.contact_id,
                "orders": len(history.days),
                "last_order_on": history.days[-1],
                "next_order_on": item.next_order_at,
                "at_risk": item.at_risk,
                "reason": (item.reason or None) and item.reason[:255],
            }
        )
        for horizon, probability in item.probability.items():
            chance_rows.append(
                {
                    "run_id": run_id,
                    "contact_id": item.contact_id,
                    "horizon_days": int(horizon),
                    "probability": float(probability),
                    "expected_orders": float(item.expected_orders.get(horizon, 0.0)),
                }
            )
        for sku, day in item.products.items():
            product_rows.append({"run_id": run_id, "contact_id": item.contact_id, "sku": sku[:100], "next_on": day})
    for table, rows in (
        (ReorderForecast.__table__, forecast_rows),
        (ReorderChance.__table__, chance_rows),
        (ReorderProduct.__table__, product_rows),
    ):
        if rows:
            session.execute(insert(table), rows)


def delete_run_rows(session: Session, run_ids: Sequence[int]) -> int:
    """Drop the forecasts of these runs, a range of contact ids per statement so ingest writes in between;
    commits."""
    deleted = 0
    for run_id in run_ids:
        for model in (ReorderChance, ReorderProduct, ReorderForecast):
            low, high = session.execute(
                select(func.min(model.contact_id), func.max(model.contact_id)).where(model.run_id == run_id)
            ).one()
            session.commit()
            if low is None:
                continue
            for start in range(low, high + 1, DELETE_BATCH):
                with write_lock(session):
                    result = session.execute(
                        delete(model)
                        .where(model.run_id == run_id, model.contact_id.between(start, start + DELETE_BATCH - 1))
                        .execution_options(synchronize_session=False)
                    )
                    deleted += result.rowcount or 0
                    session.commit()
    return deleted
