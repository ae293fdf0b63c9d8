"""The outbox consumer that turns a customer's WhatsApp cart (an `order` message) into a draft order.

It runs on the worker after message.received, never in the webhook request, so Meta gets its answer at
once. Delivery is at least once: a message that already has its order (orders.message_id is unique) is
skipped, and each cart is written in a savepoint, so one that another pass wrote meanwhile is a no-op
rather than a second order. Lines are matched to products by Meta's product_retailer_id (our SKU);
unknown ids become placeholder products for the owner to complete. The order keeps the cart's own
currency, whatever the shop's usual one is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.db import utcnow, write_lock
from sigdesk.errors import UserError
from sigdesk.events.catalogue import MessageReceived
from sigdesk.events.outbox import Stored
from sigdesk.models import Direction, Message, Order
from sigdesk.sales import commands, money
from sigdesk.sales.schemas import LineIn

log = logging.getLogger(__name__)

CART_PRICE_REASON = "Price in the customer's WhatsApp cart"


@dataclass(frozen=True)
class CartItem:
    sku: str
    quantity: Decimal
    price: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class Cart:
    catalog_id: str | None
    items: tuple[CartItem, ...]
    text: str | None


@dataclass(frozen=True)
class CartMessage:
    """What the consumer needs of a cart message, read before the write transaction."""

    id: int
    contact_id: int
    timestamp: datetime
    cart: Cart


def parse_cart(details: str | None) -> Cart | None:
    """The cart as ingest stored it in messages.details (`{"order": {catalog_id, text, items: [...]}}`);
    None when there is nothing a draft order could be made of."""
    try:
        stored = json.loads(details) if details else {}
    except ValueError:
        return None
    part = stored.get("order") if isinstance(stored, dict) else None
    if not isinstance(part, dict):
        return None
    items = []
    for item in part.get("items") or []:
        if not isinstance(item, dict) or not item.get("product_retailer_id"):
            continue
        try:
            quantity = Decimal(str(item.get("quantity")))
        except InvalidOperation:
            continue
        if not quantity.is_finite() or quantity <= 0:
            continue
        try:
            price = Decimal(str(item["item_price"])) if item.get("item_price") is not None else None
        except InvalidOperation:
            price = None
        currency = str(item.get("currency") or "").strip().upper() or None
        items.append(CartItem(str(item["product_retailer_id"])[:100], quantity, price, currency))
    if not items:
        return None
    return Cart(part.get("catalog_id"), tuple(items), part.get("text") or None)


def cart_currency(cart: Cart, default: str) -> str:
    """The cart's currency (Meta gives every item one, the catalog's); the shop's when it gives none."""
    given = {item.currency for item in cart.items if item.currency}
    if len(given) > 1:
        raise UserError("The cart mixes currencies; an order has one currency", field="currency")
    return money.currency_code(given.pop() if given else default)


def draft_order(session: Session, actor: Actor, message: CartMessage, default_currency: str) -> Order:
    """Write the draft order for one cart message (the caller holds the write lock and commits)."""
    cart = message.cart
    currency = cart_currency(cart, default_currency)
    products = commands.placeholder_products(session, actor, [item.sku for item in cart.items], currency)
    lines = []
    for item in cart.items:
        product = products[item.sku]
        if product.currency != currency:
            # A product priced in another currency cannot be a line of this order: keep what was bought
            # as free text at the cart's price rather than convert or drop it.
            lines.append(
                LineIn(description=f"{product.name} [{item.sku}]"[:255], quantity=item.quantity, unit_price=item.price)
            )
            continue
        listed = product.price_minor
        differs = (
            item.price is not None
            and listed is not None
            and money.to_minor(item.price, currency, "unit_price") != listed
        )
        lines.append(
            LineIn(
                product_id=product.id,
                quantity=item.quantity,
                unit_price=item.price,
                price_reason=CART_PRICE_REASON if differs else None,
            )
        )
    notes = f"Customer's note with the cart: {cart.text}" if cart.text else None
    return commands.create_order(
        session,
        actor,
        message.contact_id,
        lines,
        source="cart",
        status="new",
        currency=currency,
        ordered_at=min(message.timestamp, utcnow()),  # Meta's clock may run ahead of ours
        notes=notes,
        message_id=message.id,
    )


class CartOrders:
    """Make a draft order of every cart a customer sends (see the module's docstring)."""

    EVENTS = (MessageReceived.name,)

    def __call__(self, session: Session, events: list[Stored]) -> int:
        ids = [
            item.event.message_id
            for item in events
            if isinstance(item.event, MessageReceived) and item.event.type in ("order", None)
        ]
        if not ids:
            return 0
        rows = session.execute(
            select(Message.id, Message.contact_id, Message.timestamp, Message.details)
            .outerjoin(Order, Order.message_id == Message.id)
            .where(
                Message.id.in_(ids),
                Message.direction == Direction.IN.value,
                Message.type == "order",
                Order.id.is_(None),
            )
            .order_by(Message.id)
        ).all()
        carts = [
            CartMessage(row.id, row.contact_id, row.timestamp, cart)
            for row in rows
            if (cart := parse_cart(row.details)) is not None
        ]
        default = money.shop_currency(session)
        session.commit()  # ends the reading transaction; the writes below take the write lock
        if not carts:
            return 0
        actor = Actor.system("worker")
        made = 0
        with write_lock(session):
            for message in carts:
                made += self._one(session, actor, message, default)
            session.commit()
        log.info("cart orders: %s draft orders made", made)
        return made

    @staticmethod
    def _one(session: Session, actor: Actor, message: CartMessage, default: str) -> int:
        if session.scalar(select(Order.id).where(Order.message_id == message.id)) is not None:
            return 0
        try:
            with session.begin_nested():
                draft_order(session, actor, message, default)
        except IntegrityError:  # another pass wrote this cart's order first
            log.info("cart orders: message %s already has its order", message.id)
            return 0
        except UserError as refused:  # a cart no order can be made of; the message stays in the thread
            log.warning("cart orders: message %s refused (%s)", message.id, refused.field)
            return 0
        except (ArithmeticError, ValueError) as failed:
            # A cart no rule foresaw (a number beyond what a line holds, a shape LineIn refuses): refused like
            # the others, so it cannot hold back every later cart by failing the whole batch again and again.
            # The thread's cart card tells the agent no draft order was made. The reason's kind only: the
            # message may quote the customer's cart.
            log.warning("cart orders: message %s refused (%s)", message.id, type(failed).__name__)
            return 0
        return 1


def order_for_message(session: Session, message_id: int) -> Order | None:
    return session.scalar(select(Order).where(Order.message_id == message_id))
