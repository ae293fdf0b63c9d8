"""What the business sells and what each customer bought: products, orders, their lines and status history.

Money is kept as whole minor units (cents; yen; fils) beside its ISO currency, so sums are exact in SQL on both
databases; sigdesk.sales.money converts with the currency's own number of decimals. An order has one currency
and its lines carry it too (a line in another currency is refused, not converted).

`ordered_on` is the order's day in the business's time zone, fixed when the order is written: predictions,
rollups and the API's `as_of` count days, and a day must not move when a query runs in another zone.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime, utcnow

# An order's statuses, in the order they usually come; the last two take it out of revenue and predictions.
ORDER_STATUSES = ("new", "confirmed", "paid", "shipped", "delivered", "cancelled", "returned")
NOT_SOLD = ("cancelled", "returned")
# Where an order came from: a WhatsApp cart, an agent, an import or the API.
ORDER_SOURCES = ("cart", "agent", "import", "api")


class Product(Base):
    """A catalogue item. `sku` is what Meta calls the product_retailer_id; `placeholder` marks one made from an
    unknown retailer id in a customer's cart, for the owner to complete."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("sku", name="uq_products_sku"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    price_minor: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The owner's typical reorder interval in days (a 20 L water jug: 30); None: learnt from the history.
    reorder_days: Mapped[int | None] = mapped_column(Integer, default=None)
    placeholder: Mapped[bool] = mapped_column(Boolean, default=False)
    # The product's id in the business's Meta catalog, when it was synced from there.
    catalog_product_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(Base):
    """One purchase. `number` is the sequential, human-friendly number shown as #1042."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("number", name="uq_orders_number"),
        UniqueConstraint("message_id", name="uq_orders_message_id"),
        Index("ix_orders_contact_id_ordered_on", "contact_id", "ordered_on"),
        Index("ix_orders_ordered_on_status", "ordered_on", "status"),
        Index("ix_orders_status_id", "status", "id"),
        Index("ix_orders_external_ref", "external_ref"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="new")
    source: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ordered_on: Mapped[date] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    # The WhatsApp cart message it came from, if any.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), default=None)
    # The reference the business's old system gave it (an import's order_ref).
    external_ref: Mapped[str | None] = mapped_column(String(100), default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderLine(Base):
    """A line: a product (its sku and name kept as they were) or free text, a quantity and a unit price.
    `list_price_minor` is the catalogue price when the line was written; a different unit price needs a
    `price_reason`."""

    __tablename__ = "order_lines"
    __table_args__ = (
        Index("ix_order_lines_order_id_position", "order_id", "position"),
        Index("ix_order_lines_product_id_order_id", "product_id", "order_id"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=1)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"), default=None)
    sku: Mapped[str | None] = mapped_column(String(100), default=None)
    description: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    list_price_minor: Mapped[int | None] = mapped_column(BigInteger, default=None)
    price_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    total_minor: Mapped[int] = mapped_column(BigInteger)


class OrderStatusChange(Base):
    """One step of an order's status history (from None: the order was created)."""

    __tablename__ = "order_status_changes"
    __table_args__ = (
        Index("ix_order_status_changes_order_id_id", "order_id", "id"),
        # Who first moved an order on from "new", read from the index alone (an agent's own sales, analytics).
        Index("ix_order_status_changes_first_step", "order_id", "from_status", "id", "changed_by"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16), default=None)
    to_status: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    # Who, in words, as the audit log names actors ("Ana", "API token 'shop'", "system").
    actor: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
