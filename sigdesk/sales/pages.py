"""Orders where agents work: the inbox's side panel, the contact page and the thread's cart card.

The panel is one HTML fragment (purchase history, the contact's orders with their editors, a new-order
form, "Send confirmation") that ui/static/js/orders.js loads into any `[data-orders-src]` element, so the
inbox and the contact page show the same thing and neither imports this package: they ask the template
helpers this blueprint offers (`orders_panel_url`, `cart_order_url`) and leave the section out without it.
Changes are JSON calls declared with `ui_call()` that call sigdesk.sales.commands; a refused change
answers 400 naming the field and the editor keeps what was typed (the script never re-renders it then).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.conversations import commands as conversations
from sigdesk.conversations.services import agents_see_all, visible, window_closes_at, window_open
from sigdesk.db import utcnow
from sigdesk.errors import NotFound, UserError
from sigdesk.message_templates import services as message_templates
from sigdesk.models import Contact, Conversation, Message, Order, Product
from sigdesk.models.sales import NOT_SOLD, ORDER_STATUSES
from sigdesk.openapi import ui_call
from sigdesk.roles import can
from sigdesk.sales import commands, services
from sigdesk.sales.carts import order_for_message
from sigdesk.sales.money import format_money, from_minor
from sigdesk.sales.page_schemas import (
    ConfirmationForm,
    ConfirmationQueued,
    ContactPath,
    MessagePath,
    OrderForm,
    OrderPath,
    OrderSaved,
    PanelQuery,
    ProductChoice,
    ProductChoices,
    ProductQuery,
    StatusForm,
)
from sigdesk.web import acting, actor, db_session, given, requires, writing

bp = Blueprint("orders_ui", __name__, url_prefix="/sales/orders")

PANEL_ORDERS = 10
# How long the thread's cart card says "making a draft order" before it says none was made.
CART_WAIT = timedelta(minutes=1)
PRODUCT_CHOICES = 20
CONSENT_NOTE = (
    "An order confirmation is a transactional message: it goes out even to a customer who opted out of "
    "marketing. Outside the 24-hour window choose a Utility template; Marketing templates are refused for "
    "customers who opted out."
)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    def orders_panel_url(contact_id: int, conversation_id: int | None = None) -> str:
        return url_for("orders_ui.panel", contact_id=contact_id, conversation_id=conversation_id)

    def cart_order_url(message_id: int) -> str:
        return url_for("orders_ui.cart_order", message_id=message_id)

    return {"orders_panel_url": orders_panel_url, "cart_order_url": cart_order_url}


def _fragment(html: str) -> Response:
    response = Response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


def _contact(session: Session, contact_id: int) -> Contact:
    found = session.get(Contact, contact_id)
    if found is None:
        raise NotFound("No such contact", field="contact_id")
    return found


# --- what the fragments show ------------------------------------------------------------------------


def order_views(session: Session, orders: Sequence[services.OrderData]) -> list[dict[str, Any]]:
    """The orders as the panel and the cart card show them: the read model's data, money formatted, and
    which lines are placeholder products (made from a cart item the catalogue lacked)."""
    ids = {line.product_id for order in orders for line in order.lines if line.product_id}
    placeholders = (
        set(session.scalars(select(Product.id).where(Product.id.in_(ids), Product.placeholder.is_(True))))
        if ids
        else set()
    )
    return [
        {
            "id": order.id,
            "number": order.number,
            "status": order.status,
            "source": order.source,
            "currency": order.currency,
            "total": format_money(order.total_minor, order.currency),
            "ordered_at": order.ordered_at,
            "notes": order.notes or "",
            "message_id": order.message_id,
            "lines": [
                {
                    "product_id": line.product_id,
                    "sku": line.sku,
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "list_price": str(from_minor(line.list_price_minor, order.currency))
                    if line.list_price_minor is not None
                    else None,
                    "unit_text": format_money(line.unit_price_minor, order.currency),
                    "price_reason": line.price_reason or "",
                    "placeholder": line.product_id in placeholders,
                }
                for line in order.lines
            ],
            "has_placeholders": any(line.product_id in placeholders for line in order.lines),
        }
        for order in orders
    ]


def history_view(history: services.PurchaseHistory) -> dict[str, Any]:
    """The purchase history's figures in words (one amount per currency the customer bought in)."""
    interval = history.typical_interval_days
    return {
        "count": history.sold_count
        if history.sold_count == history.order_count
        else f"{history.sold_count} (and {history.order_count - history.sold_count} cancelled or returned)",
        "lifetime": ", ".join(format_money(row.lifetime_value_minor, row.currency) for row in history.totals) or "—",
        "average": ", ".join(format_money(row.average_order_value_minor, row.currency) for row in history.totals)
        or "—",
        "usual": ", ".join(f"{item.name} ({item.orders}×)" for item in history.usual_products),
        "interval": f"every {interval:g} days"
        if interval is not None
        else (history.interval_note or "not enough history"),
    }


def confirmation_text(view: dict[str, Any]) -> str:
    """The suggested free-form confirmation; the agent edits it before sending."""
    items = ", ".join(f"{line['quantity']} × {line['description']}" for line in view["lines"])
    return f"Thank you! Your order #{view['number']} is confirmed: {items}. Total: {view['total']}."


def _conversation_for(session: Session, contact_id: int, wanted: int | None) -> Conversation | None:
    """The conversation a confirmation goes to: the inbox's open one, else the newest the agent may see."""
    user = actor()
    if wanted is not None:
        try:
            found = conversations.find(session, acting(), wanted)
        except NotFound:
            return None
        return found if found.contact_id == contact_id else None
    return session.scalar(
        visible(user, agents_see_all(session))
        .where(Conversation.contact_id == contact_id)
        .order_by(Conversation.created_at.desc(), Conversation.id.desc())
        .limit(1)
    )


@bp.get("/contact/<contact_id>")
@requires("orders.manage")
@ui_call("ordersPanel", path=ContactPath, query=PanelQuery)
def panel(contact_id: int):
    session = db_session()
    contact = _contact(session, contact_id)
    history = services.purchase_history(session, contact.id, limit=PANEL_ORDERS)
    conversation = _conversation_for(session, contact.id, given(PanelQuery).conversation_id)
    is_open = conversation is not None and window_open(conversation)
    templates = message_templates.approved(session) if conversation is not None and not is_open else []
    views = order_views(session, history.orders)
    return _fragment(
        render_template(
            "orders/_panel.html",
            contact=contact,
            history=history_view(history),
            orders=views,
            older=history.next_cursor is not None,
            suggestions={view["id"]: confirmation_text(view) for view in views},
            statuses=ORDER_STATUSES,
            not_sold=NOT_SOLD,
            conversation=conversation,
            window_open=is_open,
            closes=window_closes_at(conversation) if conversation is not None else None,
            templates=[message_templates.option(template) for template in templates],
            consent_note=CONSENT_NOTE,
            may_products=can(actor().role, "products.manage"),
        )
    )


@bp.get("/message/<message_id>")
@requires("orders.manage")
@ui_call("ordersCartOrder", path=MessagePath)
def cart_order(message_id: int):
    """The thread's cart card: the draft order made of it, or a note that it is being made."""
    session = db_session()
    message = session.get(Message, message_id)
    if message is None or message.type != "order":
        raise NotFound("No such cart message", field="message_id")
    conversations.find(session, acting(), message.conversation_id)
    order = order_for_message(session, message.id)
    return _fragment(
        render_template(
            "orders/_cart_order.html",
            message=message,
            order=order_views(session, services.orders_data(session, [order]))[0] if order is not None else None,
            given_up=order is None and message.created_at < utcnow() - CART_WAIT,
        )
    )


@bp.get("/products")
@requires("orders.manage")
@ui_call("ordersProducts", (200, ProductChoices), query=ProductQuery)
def products():
    """The product picker's search: active products whose SKU or name holds the words typed."""
    found = services.list_products(db_session(), q=given(ProductQuery).q, active=True, limit=PRODUCT_CHOICES)
    return jsonify(
        items=[
            ProductChoice(
                id=row.id,
                sku=row.sku,
                name=row.name,
                price=row.price,
                currency=row.currency,
                placeholder=row.placeholder,
            ).model_dump()
            for row in found.items
        ]
    )


def _saved(order: Order, status: int = 200):
    return (
        jsonify(
            order_id=order.id,
            number=order.number,
            status=order.status,
            total=format_money(order.total_minor, order.currency),
        ),
        status,
    )


@bp.post("/contact/<contact_id>/orders")
@requires("orders.manage")
@ui_call("ordersCreate", (201, OrderSaved), path=ContactPath, json=OrderForm)
def create(contact_id: int):
    form = given(OrderForm)
    with writing() as session:
        order = commands.create_order(
            session, acting(), contact_id, form.lines, source="agent", notes=(form.notes or "").strip() or None
        )
    return _saved(order, 201)


@bp.post("/<order_id>")
@requires("orders.manage")
@ui_call("ordersUpdate", (200, OrderSaved), path=OrderPath, json=OrderForm)
def update(order_id: int):
    form = given(OrderForm)
    with writing() as session:
        order = commands.update_order(
            session, acting(), order_id, lines=form.lines, notes=(form.notes or "").strip() or None
        )
    return _saved(order)


@bp.post("/<order_id>/status")
@requires("orders.manage")
@ui_call("ordersSetStatus", (200, OrderSaved), path=OrderPath, json=StatusForm)
def set_status(order_id: int):
    form = given(StatusForm)
    with writing() as session:
        order = commands.set_order_status(session, acting(), order_id, form.status, (form.note or "").strip() or None)
    return _saved(order)


@bp.post("/<order_id>/confirmation")
@requires("orders.manage")
@ui_call("ordersSendConfirmation", (202, ConfirmationQueued), path=OrderPath, json=ConfirmationForm)
def send_confirmation(order_id: int):
    """Through the inbox's own send path: free text inside the 24-hour window, an approved template outside."""
    form = given(ConfirmationForm)
    with writing() as session:
        order = session.get(Order, order_id)
        if order is None:
            raise NotFound("No such order", field="order_id")
        conversation = conversations.find(session, acting(), form.conversation_id)
        if conversation.contact_id != order.contact_id:
            raise UserError("That conversation is with another customer", field="conversation_id")
        if form.template_id is not None:
            sent = conversations.send_template(session, acting(), conversation.id, form.template_id, form.params or {})
            kind = "template"
        else:
            text = (form.text or "").strip()
            if not text:
                raise UserError("Write the confirmation, or choose a template", field="text")
            if not window_open(conversation):
                raise UserError(
                    "The 24-hour window is closed: choose an approved template to confirm the order",
                    field="template_id",
                )
            sent = conversations.send(session, acting(), conversation.id, "text", {"body": text, "preview_url": False})
            kind = "text"
    return jsonify(message_id=sent.id, status=sent.status, kind=kind), 202


def init_app(app: Flask) -> None:
    """The orders UI's part of the sales feature (called from sigdesk/sales/feature.py): these pages and
    the consumer that makes a draft order of every WhatsApp cart."""
    from sigdesk.sales.carts import CartOrders

    app.register_blueprint(bp)
    state = app.extensions["sigdesk"]
    consumer = CartOrders()
    state.outbox.register("cart orders", consumer, consumer.EVENTS)
