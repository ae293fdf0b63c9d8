"""The sales read side: one serializer per entity (ProductData, OrderData), the lists, and a contact's purchase
history, used by the API, the pages, exports and the timeline alike.

Amounts are answered twice: as exact decimal text in major units ("12.50") for people and clients, and as
whole minor units (`*_minor`) for sums. Orders are listed by the day they were ordered (business time zone),
newest first, so the (contact_id, ordered_on) and (ordered_on, status) indexes serve every list and the purchase
history reads only the contact's own rows.
"""

from __future__ import annotations

import statistics
from decimal import Decimal
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timezone
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, object_session

from sigdesk.contacts.services import contact_name
from sigdesk.timeline import Position, TimelineEntry, keyset
from sigdesk.errors import NotFound, UserError
from sigdesk.models import Contact
from sigdesk.models.sales import NOT_SOLD, Order, OrderLine, OrderStatusChange, Product
from sigdesk.paging import Cursor, Page, newest_first, page
from sigdesk.sales.money import format_money, from_minor

DEFAULT_LIMIT = 50
HISTORY_LIMIT = 10
USUAL_PRODUCTS = 5
NOT_ENOUGH_HISTORY = "not enough history: an interval needs orders on at least two days"


def amount(minor: int | None, currency: str) -> str | None:
    """Minor units as exact text in major units ("12.50"); None stays None."""
    return None if minor is None else str(from_minor(minor, currency))


# --- products --------------------------------------------------------------------------------------


class ProductData(BaseModel):
    """A catalogue item as the API, the pages and exports show it."""

    id: int
    sku: str = Field(description="Meta's product_retailer_id")
    name: str
    price: str | None = Field(description='In major units, exact ("12.50"); null: no price yet')
    price_minor: int | None = Field(description="The price in minor units (cents)")
    currency: str
    category: str | None
    active: bool
    reorder_days: int | None = Field(description="The owner's typical days between purchases; null: learnt")
    placeholder: bool = Field(description="Made from an unknown item in a customer's cart: the owner completes it")
    catalog_product_id: str | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, product: Product) -> "ProductData":
        return cls(
            id=product.id,
            sku=product.sku,
            name=product.name,
            price=amount(product.price_minor, product.currency),
            price_minor=product.price_minor,
            currency=product.currency,
            category=product.category,
            active=bool(product.active),
            reorder_days=product.reorder_days,
            placeholder=bool(product.placeholder),
            catalog_product_id=product.catalog_product_id,
            created_at=product.created_at,
            updated_at=product.updated_at,
        )


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound("There is no such product", field="product_id")
    return product


def list_products(
    session: Session,
    q: str | None = None,
    category: str | None = None,
    active: bool | None = None,
    placeholder: bool | None = None,
    cursor: str | Cursor | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[ProductData]:
    """Products newest first, matching part of their SKU or name (`q`), a category, active or placeholder."""
    query = select(Product)
    if q and q.strip():
        text = q.strip()
        query = query.where(
            or_(Product.sku.icontains(text, autoescape=True), Product.name.icontains(text, autoescape=True))
        )
    if category and category.strip():
        query = query.where(Product.category == category.strip())
    if active is not None:
        query = query.where(Product.active == active)
    if placeholder is not None:
        query = query.where(Product.placeholder == placeholder)
    position = Cursor.decode(cursor) if isinstance(cursor, str) and cursor else cursor or None
    found = session.scalars(newest_first(query, Product.created_at, Product.id, position, limit)).all()
    result = page(found, limit, lambda product: Cursor(product.created_at, product.id))
    return Page([ProductData.of(product) for product in result.items], result.next_cursor)


def categories(session: Session) -> list[str]:
    """Every category in use, in order (for pickers and filters)."""
    return list(
        session.scalars(
            select(Product.category).where(Product.category.is_not(None)).distinct().order_by(Product.category)
        )
    )


# --- orders ----------------------------------------------------------------------------------------


class OrderLineData(BaseModel):
    id: int
    position: int
    product_id: int | None = Field(description="null: free text, or the product was deleted")
    sku: str | None = Field(description="The product's SKU when the line was written")
    description: str
    quantity: str = Field(description='Exact decimal text ("1.5")')
    unit_price: str = Field(description="In major units, exact")
    unit_price_minor: int
    list_price_minor: int | None = Field(description="The product's price when the line was written")
    price_reason: str | None = Field(description="Why the unit price differs from the product's price")
    total: str
    total_minor: int


class StatusStepData(BaseModel):
    from_status: str | None = Field(description="null: the order was created")
    to_status: str
    actor: str = Field(description="Who, in words")
    changed_by: int | None = Field(description="The user, when a person changed it")
    note: str | None
    changed_at: datetime | None


class OrderData(BaseModel):
    """An order with its lines and status history, as every reader sees it."""

    id: int
    number: int = Field(description="Sequential and human friendly, shown as #1042")
    contact_id: int
    contact_name: str
    status: str
    source: str = Field(description="cart, agent, import or api")
    currency: str
    total: str = Field(description="The lines' sum in major units, exact")
    total_minor: int
    ordered_at: datetime | None
    ordered_on: date = Field(description="The order's day in the business's time zone")
    notes: str | None
    message_id: int | None = Field(description="The WhatsApp cart message it came from")
    external_ref: str | None
    created_by: int | None
    created_at: datetime | None
    updated_at: datetime | None
    lines: list[OrderLineData]
    history: list[StatusStepData] = Field(description="Every status it had, oldest first")

    @classmethod
    def of(cls, order: Order) -> "OrderData":
        """One order (three small queries); lists use orders_data, which serializes a page at once."""
        session = object_session(order)
        if session is None:
            raise RuntimeError("OrderData.of needs an order attached to a session")
        return orders_data(session, [order])[0]


_LINE_COLUMNS = (
    OrderLine.order_id,
    OrderLine.id,
    OrderLine.position,
    OrderLine.product_id,
    OrderLine.sku,
    OrderLine.description,
    OrderLine.quantity,
    OrderLine.unit_price_minor,
    OrderLine.list_price_minor,
    OrderLine.price_reason,
    OrderLine.total_minor,
)
_HISTORY_COLUMNS = (
    OrderStatusChange.order_id,
    OrderStatusChange.from_status,
    OrderStatusChange.to_status,
    OrderStatusChange.actor,
    OrderStatusChange.changed_by,
    OrderStatusChange.note,
    OrderStatusChange.changed_at,
)


def _line(row: Any, currency: str) -> OrderLineData:
    return OrderLineData(
        id=row.id,
        position=row.position,
        product_id=row.product_id,
        sku=row.sku,
        description=row.description,
        quantity=_quantity_text(row.quantity),
        unit_price=amount(row.unit_price_minor, currency) or "0",
        unit_price_minor=row.unit_price_minor,
        list_price_minor=row.list_price_minor,
        price_reason=row.price_reason,
        total=amount(row.total_minor, currency) or "0",
        total_minor=row.total_minor,
    )


def orders_data(session: Session, orders: Sequence[Order]) -> list[OrderData]:
    """Serialize many orders with three queries in all (lines, history, contact names), reading columns rather
    than ORM objects: a purchase history page stays a few milliseconds."""
    if not orders:
        return []
    ids = [order.id for order in orders]
    lines: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(
        select(*_LINE_COLUMNS)
        .where(OrderLine.order_id.in_(ids))
        .order_by(OrderLine.order_id, OrderLine.position, OrderLine.id)
    ):
        lines[row.order_id].append(row)
    history: dict[int, list[StatusStepData]] = defaultdict(list)
    for row in session.execute(
        select(*_HISTORY_COLUMNS)
        .where(OrderStatusChange.order_id.in_(ids))
        .order_by(OrderStatusChange.order_id, OrderStatusChange.id)
    ):
        history[row.order_id].append(
            StatusStepData(
                from_status=row.from_status,
                to_status=row.to_status,
                actor=row.actor,
                changed_by=row.changed_by,
                note=row.note,
                changed_at=row.changed_at,
            )
        )
    names = contact_names(session, {order.contact_id for order in orders})
    return [
        OrderData(
            id=order.id,
            number=order.number,
            contact_id=order.contact_id,
            contact_name=names.get(order.contact_id, f"Contact {order.contact_id}"),
            status=order.status,
            source=order.source,
            currency=order.currency,
            total=amount(order.total_minor, order.currency) or "0",
            total_minor=order.total_minor,
            ordered_at=order.ordered_at,
            ordered_on=order.ordered_on,
            notes=order.notes,
            message_id=order.message_id,
            external_ref=order.external_ref,
            created_by=order.created_by,
            created_at=order.created_at,
            updated_at=order.updated_at,
            lines=[_line(row, order.currency) for row in lines[order.id]],
            history=history[order.id],
        )
        for order in orders
    ]


def contact_names(session: Session, contact_ids: set[int]) -> dict[int, str]:
    if not contact_ids:
        return {}
    rows = session.execute(
        select(Contact.id, Contact.display_name, Contact.profile_name, Contact.wa_id, Contact.user_id).where(
            Contact.id.in_(sorted(contact_ids))
        )
    )
    return {row[0]: contact_name(*row) for row in rows}


def get_order(session: Session, order_id: int) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("There is no such order", field="order_id")
    return order


def _day_cursor(text: str | None, field: str = "cursor") -> tuple[date, int] | None:
    """A list position (day ordered, id) from a cursor SigDesk gave out."""
    if not text:
        return None
    position = Cursor.decode(text, field)
    if position.at is None:
        raise UserError(f"'{field}' is not a list position SigDesk gave out", field=field)
    return position.at.date(), position.id


def _day_cursor_of(order: Order) -> Cursor:
    return Cursor(datetime.combine(order.ordered_on, time(), tzinfo=timezone.utc), order.id)


def _by_day(query, position: tuple[date, int] | None, limit: int):
    if position is not None:
        day, last_id = position
        query = query.where(or_(Order.ordered_on < day, and_(Order.ordered_on == day, Order.id < last_id)))
    return query.order_by(Order.ordered_on.desc(), Order.id.desc()).limit(limit + 1)


def list_orders(
    session: Session,
    contact_id: int | None = None,
    status: str | None = None,
    since: date | None = None,
    until: date | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[OrderData]:
    """Orders newest first by the day ordered (then the latest written first), filtered by contact, status and
    a range of days (inclusive, business time zone)."""
    if since is not None and until is not None and since > until:
        raise UserError("'since' is after 'until'", field="since")
    query = select(Order)
    if contact_id is not None:
        query = query.where(Order.contact_id == contact_id)
    if status is not None:
        query = query.where(Order.status == status)
    if since is not None:
        query = query.where(Order.ordered_on >= since)
    if until is not None:
        query = query.where(Order.ordered_on <= until)
    found = session.scalars(_by_day(query, _day_cursor(cursor), limit)).all()
    result = page(found, limit, _day_cursor_of)
    return Page(orders_data(session, result.items), result.next_cursor)


# --- purchase history ------------------------------------------------------------------------------


class MoneyFigures(BaseModel):
    """One currency's figures (a shop that changed currency has two)."""

    currency: str
    orders: int = Field(description="Orders counted (cancelled and returned ones are not)")
    lifetime_value: str
    lifetime_value_minor: int
    average_order_value: str
    average_order_value_minor: int = Field(description="Rounded to the nearest minor unit")


class UsualProduct(BaseModel):
    product_id: int | None
    sku: str | None
    name: str
    orders: int = Field(description="How many of the contact's orders had it")
    quantity: str = Field(description="How much in all, exact")
    last_ordered_on: date


class PurchaseHistory(BaseModel):
    """What a contact bought: the orders (newest first, paged) and figures over all their sold orders."""

    contact_id: int
    contact_name: str
    orders: list[OrderData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for older orders; null on the last page")
    order_count: int = Field(description="All the contact's orders, cancelled and returned included")
    sold_count: int = Field(description="Orders that count as sold (not cancelled or returned)")
    first_ordered_on: date | None
    last_ordered_on: date | None
    totals: list[MoneyFigures] = Field(description="Lifetime and average order value per currency")
    usual_products: list[UsualProduct] = Field(description="What they buy most often, most orders first")
    typical_interval_days: float | None = Field(
        description="Median days between two order days; null when there is not enough history"
    )
    interval_note: str | None = Field(description="Why there is no interval, in plain words")


History = PurchaseHistory


def _median_gap(days: Sequence[date]) -> float | None:
    distinct = sorted(set(days))
    if len(distinct) < 2:
        return None
    return float(statistics.median((later - earlier).days for earlier, later in zip(distinct, distinct[1:])))


def purchase_history(
    session: Session, contact_id: int, *, cursor: str | None = None, limit: int = HISTORY_LIMIT
) -> PurchaseHistory:
    """A contact's purchase history. Every query reads only the contact's rows through the
    (contact_id, ordered_on) index, so it stays fast whatever the number of orders overall."""
    names = contact_names(session, {contact_id})
    if contact_id not in names:
        raise NotFound("There is no such contact", field="contact_id")
    listed = list_orders(session, contact_id=contact_id, cursor=cursor, limit=limit)
    by_day = session.execute(
        select(
            Order.ordered_on,
            Order.currency,
            Order.status.in_(NOT_SOLD),
            func.count(),
            func.sum(Order.total_minor),
        )
        .where(Order.contact_id == contact_id)
        .group_by(Order.ordered_on, Order.currency, Order.status.in_(NOT_SOLD))
    ).all()
    order_count = sum(row[3] for row in by_day)
    sold: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # currency -> [orders, total]
    sold_days = set()
    for day, currency, not_sold, count, total in by_day:
        if not_sold:
            continue
        sold[currency][0] += count
        sold[currency][1] += int(total or 0)
        sold_days.add(day)
    totals = []
    for currency, (count, total) in sorted(sold.items(), key=lambda item: (-item[1][0], item[0])):
        average = (total * 2 + count) // (count * 2)  # half up, in whole numbers
        totals.append(
            MoneyFigures(
                currency=currency,
                orders=count,
                lifetime_value=amount(total, currency) or "0",
                lifetime_value_minor=total,
                average_order_value=amount(average, currency) or "0",
                average_order_value_minor=average,
            )
        )
    interval = _median_gap(sorted(sold_days))
    return PurchaseHistory(
        contact_id=contact_id,
        contact_name=names[contact_id],
        orders=listed.items,
        next_cursor=listed.next_cursor,
        order_count=order_count,
        sold_count=sum(count for count, _ in sold.values()),
        first_ordered_on=min((row[0] for row in by_day), default=None),
        last_ordered_on=max((row[0] for row in by_day), default=None),
        totals=totals,
        usual_products=usual_products(session, contact_id),
        typical_interval_days=interval,
        interval_note=NOT_ENOUGH_HISTORY if interval is None else None,
    )


def usual_products(session: Session, contact_id: int, top: int = USUAL_PRODUCTS) -> list[UsualProduct]:
    """The products in most of the contact's sold orders (free-text lines count by their description)."""
    key = func.coalesce(OrderLine.sku, OrderLine.description)
    rows = session.execute(
        select(
            key,
            func.max(OrderLine.product_id),
            func.max(OrderLine.sku),
            func.max(OrderLine.description),
            func.count(func.distinct(Order.id)),
            func.sum(OrderLine.quantity),
            func.max(Order.ordered_on),
        )
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.contact_id == contact_id, Order.status.not_in(NOT_SOLD))
        .group_by(key)
        .order_by(func.count(func.distinct(Order.id)).desc(), func.max(Order.ordered_on).desc(), key)
        .limit(top)
    ).all()
    return [
        UsualProduct(
            product_id=row[1],
            sku=row[2],
            name=row[3],
            orders=row[4],
            quantity=_quantity_text(row[5]),
            last_ordered_on=row[6],
        )
        for row in rows
    ]


def _quantity_text(value: Any) -> str:
    number = Decimal(str(value or 0)).normalize()
    return f"{number:f}"


# --- what other features read of orders --------------------------------------------------------------


def has_ordered(session: Session, rule: Any, now: datetime) -> ColumnElement[bool]:
    """The lead score's "Has ordered" condition: the contact has an order that counts as sold."""
    return (
        select(Order.id)
        .where(Order.contact_id == Contact.id, Order.status.not_in(NOT_SOLD))
        .correlate(Contact)
        .exists()
    )


TIMELINE_SOURCE = "order"
LINES_SHOWN = 5


def order_timeline(session: Session, contact_id: int, before: Position | None, limit: int) -> list[TimelineEntry]:
    """A contact's orders on their timeline, at the moment they were ordered: number, total, status, lines."""
    orders = session.scalars(
        keyset(
            select(Order).where(Order.contact_id == contact_id),
            TIMELINE_SOURCE,
            Order.ordered_at,
            Order.id,
            before,
            limit,
        )
    ).all()
    if not orders:
        return []
    ids = [order.id for order in orders]
    lines: dict[int, list[str]] = defaultdict(list)
    for order_id, quantity, description in session.execute(
        select(OrderLine.order_id, OrderLine.quantity, OrderLine.description)
        .where(OrderLine.order_id.in_(ids))
        .order_by(OrderLine.order_id, OrderLine.position, OrderLine.id)
    ):
        lines[order_id].append(f"{_quantity_text(quantity)} × {description}")
    creators = dict(
        session.execute(
            select(OrderStatusChange.order_id, OrderStatusChange.actor).where(
                OrderStatusChange.order_id.in_(ids), OrderStatusChange.from_status.is_(None)
            )
        ).all()
    )
    entries = []
    for order in orders:
        shown = lines[order.id][:LINES_SHOWN]
        more = len(lines[order.id]) - len(shown)
        detail = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        entries.append(
            TimelineEntry(
                at=order.ordered_at,
                source=TIMELINE_SOURCE,
                id=order.id,
                kind=f"order.{order.status}",
                title=f"Order #{order.number}: {format_money(order.total_minor, order.currency)}, {order.status}",
                detail=detail or None,
                by=creators.get(order.id),
                link=f"order:{order.id}",
            )
        )
    return entries
