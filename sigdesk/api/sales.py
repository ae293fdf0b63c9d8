"""The sales part of the REST API: products (admins manage them), orders (agents manage them) and a contact's
purchase history.

The views parse, call the one command (sigdesk.sales.commands) and answer with the one serializer
(ProductData, OrderData); the commands judge every value, so the API refuses as the pages do, naming the
field ("lines.0.unit_price").
"""

from __future__ import annotations

from flask import request
from pydantic import BaseModel, Field

from sigdesk.api.views import bp
from sigdesk.openapi import operation
from sigdesk.sales import commands, services
from sigdesk.sales.schemas import (
    NewOrder,
    NewProduct,
    OrderChanges,
    OrderSearch,
    ProductChanges,
    ProductSearch,
    StatusChange,
)
from sigdesk.sales.services import OrderData, ProductData, PurchaseHistory
from sigdesk.schemas import Id, PageSize, Paging, limit
from sigdesk.web import acting, db_session, requires, writing


class ProductPath(BaseModel):
    product_id: Id = Field(description="A product's id")


class OrderPath(BaseModel):
    order_id: Id = Field(description="An order's id")


class HistoryPath(BaseModel):
    contact_id: Id = Field(description="A contact's id")


class HistoryPaging(Paging):
    """The history's first page is short: a contact panel shows the latest orders, older ones page in."""

    limit: PageSize = limit(services.HISTORY_LIMIT, 100)


class ProductPage(BaseModel):
    """Newest first."""

    items: list[ProductData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


class OrderPage(BaseModel):
    """Newest first by the day ordered."""

    items: list[OrderData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


def _order(order_id: int) -> OrderData:
    session = db_session()
    return services.orders_data(session, [services.get_order(session, order_id)])[0]


@bp.get("/products")
@requires("contacts.view")
@operation("listProducts", (200, ProductPage), query=ProductSearch, errors=(422,))
def list_products():
    """Products, newest first, or those whose SKU or name contains q"""
    query: ProductSearch = request.context.query  # type: ignore[attr-defined]
    found = services.list_products(
        db_session(), query.q, query.category, query.active, query.placeholder, query.cursor or None, query.limit
    )
    return ProductPage(items=found.items, next_cursor=found.next_cursor)


@bp.post("/products")
@requires("products.manage")
@operation("createProduct", (201, ProductData), json=NewProduct, errors=(409, 422))
def create_product():
    """Add a product (admins)

    `price` is in major units (12.50) of `currency` (default: the sales.currency setting); more decimals
    than the currency has are refused, naming `price`. A SKU already taken is a 409.
    """
    body: NewProduct = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        product = commands.create_product(session, acting(), **body.model_dump())
        return ProductData.of(product), 201


@bp.get("/products/<product_id>")
@requires("contacts.view")
@operation("getProduct", (200, ProductData), path=ProductPath, errors=(404,))
def get_product(product_id: int):
    """A product"""
    return ProductData.of(services.get_product(db_session(), product_id))


@bp.patch("/products/<product_id>")
@requires("products.manage")
@operation("updateProduct", (200, ProductData), path=ProductPath, json=ProductChanges, errors=(404, 409, 422))
def update_product(product_id: int):
    """Change some of a product's fields (admins)

    Fields left out stay; null clears price, category, reorder_days or catalog_product_id (sku, name,
    currency and active cannot be cleared). A placeholder stops being one once edited.
    """
    body: ProductChanges = request.context.json  # type: ignore[attr-defined]
    changes = body.model_dump(exclude_unset=True)
    for key in ("sku", "name", "currency", "active"):
        if key in changes and changes[key] is None:
            changes.pop(key)
    with writing() as session:
        product = commands.update_product(session, acting(), product_id, **changes)
        return ProductData.of(product)


@bp.get("/orders")
@requires("contacts.view")
@operation("listOrders", (200, OrderPage), query=OrderSearch, errors=(422,))
def list_orders():
    """Orders, newest first, filtered by contact, status and days ordered (since and until inclusive)"""
    query: OrderSearch = request.context.query  # type: ignore[attr-defined]
    found = services.list_orders(
        db_session(), query.contact_id, query.status, query.since, query.until, query.cursor or None, query.limit
    )
    return OrderPage(items=found.items, next_cursor=found.next_cursor)


@bp.post("/orders")
@requires("orders.manage")
@operation("createOrder", (201, OrderData), json=NewOrder, errors=(409, 422))
def create_order():
    """Write an order for a contact

    The number is the next in sequence and the totals are the lines' sums. Each line gives a product
    (`product_id` or `sku`) or a `description` and `unit_price`; a unit price other than the product's
    needs `price_reason`. `ordered_at` may be a date alone (2026-06-01: that day in the business time zone)
    or a date and time (without a zone: the business's wall clock). Refusals name the field:
    `lines.0.quantity`, `lines.1.currency`, `lines` (a total beyond what SigDesk holds), `ordered_at`
    (in the future), `contact_id`.
    """
    body: NewOrder = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        order = commands.create_order(
            session,
            acting(),
            body.contact_id,
            body.lines,
            source="api",
            status=body.status,
            currency=body.currency,
            ordered_at=body.ordered_at,
            notes=body.notes,
            external_ref=body.external_ref,
        )
        order_id = order.id
    return _order(order_id), 201


@bp.get("/orders/<order_id>")
@requires("contacts.view")
@operation("getOrder", (200, OrderData), path=OrderPath, errors=(404,))
def get_order(order_id: int):
    """An order with its lines and status history"""
    return _order(order_id)


@bp.patch("/orders/<order_id>")
@requires("orders.manage")
@operation("updateOrder", (200, OrderData), path=OrderPath, json=OrderChanges, errors=(404, 422))
def update_order(order_id: int):
    """Change an order's lines, notes or date

    `lines` given replace every line (totals recomputed); `notes` given replace the notes (null clears).
    """
    body: OrderChanges = request.context.json  # type: ignore[attr-defined]
    given = body.model_dump(exclude_unset=True)
    with writing() as session:
        commands.update_order(
            session,
            acting(),
            order_id,
            lines=body.lines if "lines" in given else None,
            notes=body.notes if "notes" in given else commands.UNSET,
            ordered_at=body.ordered_at,
        )
    return _order(order_id)


@bp.delete("/orders/<order_id>")
@requires("orders.manage")
@operation("deleteOrder", (204, None), path=OrderPath, errors=(404,))
def delete_order(order_id: int):
    """Delete an order entered by mistake (a cancellation is a status: POST /orders/{order_id}/status)"""
    with writing() as session:
        commands.delete_order(session, acting(), order_id)
    return "", 204


@bp.post("/orders/<order_id>/status")
@requires("orders.manage")
@operation("setOrderStatus", (200, OrderData), path=OrderPath, json=StatusChange, errors=(404, 422))
def set_order_status(order_id: int):
    """Move an order to another status

    Each change is kept in the order's history with who made it and the note; cancelled and returned
    orders leave revenue and predictions.
    """
    body: StatusChange = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        commands.set_order_status(session, acting(), order_id, body.status, body.note)
    return _order(order_id)


@bp.get("/contacts/<contact_id>/purchase-history")
@requires("contacts.view")
@operation("getPurchaseHistory", (200, PurchaseHistory), path=HistoryPath, query=HistoryPaging, errors=(404, 422))
def purchase_history(contact_id: int):
    """What a contact bought

    Their orders newest first (paged by ?cursor=), lifetime and average order value per currency,
    usual products and the typical days between orders (null, with `interval_note`, when there is not
    enough history). Cancelled and returned orders count in no figure.
    """
    query: HistoryPaging = request.context.query  # type: ignore[attr-defined]
    return services.purchase_history(db_session(), contact_id, cursor=query.cursor or None, limit=query.limit)
