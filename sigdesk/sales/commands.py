"""State changes of products and orders, one function each, taking (session, actor, ...); the caller owns the
transaction (they flush, never commit), so a refusal of any part stores nothing.

Every refusal is a UserError naming the field as the API spells it ("lines.0.quantity"), so the pages, the
API, carts and imports refuse alike. Totals are always recomputed from the lines; an order's number is the
next in one sequence shared by every writer (next_order_numbers), safe under concurrent writers on SQLite
(one writer at a time) and MariaDB (a locked counter row, and a retry should a writer that bypasses it win
a number first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.db import utcnow
from sigdesk.errors import Conflict, NotFound, UserError
from sigdesk.events.catalogue import OrderChanged, OrderCreated, OrderDeleted, OrderStatusChanged, ProductChanged
from sigdesk.events.outbox import record as record_event
from sigdesk.general.clock import business_zone
from sigdesk.models import ApiToken, Contact, Setting
from sigdesk.models.sales import ORDER_SOURCES, ORDER_STATUSES, Order, OrderLine, OrderStatusChange, Product
from sigdesk.sales.money import MAX_MINOR, currency_code, from_minor, shop_currency, to_minor
from sigdesk.sales.schemas import (
    CATALOG_ID_MAX,
    CATEGORY_MAX,
    NAME_MAX,
    NOTES_MAX,
    REASON_MAX,
    REF_MAX,
    SKU_MAX,
    STATUS_NOTE_MAX,
    MAX_QUANTITY,
    MOMENT_TEXT_MAX,
    QUANTITY_DECIMALS,
    LineIn,
    moment_value,
)

# The settings row that holds the last order number given out (internal: never shown, never exported).
COUNTER_KEY = "_internal.sales.order_number"
FIRST_NUMBER = 1001
# How far ahead of this machine's clock an order may be dated: another device's clock may run a little fast.
CLOCK_SKEW = timedelta(minutes=5)
MAX_REORDER_DAYS = 3650
MAX_LINES = 500
NUMBER_ATTEMPTS = 5
PRODUCT_FIELDS = (
    "sku",
    "name",
    "price",
    "currency",
    "category",
    "active",
    "reorder_days",
    "placeholder",
    "catalog_product_id",
)


class _Unset:
    """Marks an argument left out, where None means "clear it"."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


# --- helpers ---------------------------------------------------------------------------------------


def _now() -> datetime:
    """Now to whole seconds, as MariaDB keeps it, so what a command answers is what a reader reads back."""
    return utcnow().replace(microsecond=0)


def actor_words(session: Session, actor: Actor) -> str:
    """Who, in words, as the audit log names actors: a person's name, an API token's name, or SigDesk."""
    if actor.token_id is not None:
        token = session.get(ApiToken, actor.token_id)
        return f"API token '{token.name}'" if token is not None else "API token"
    return actor.name


def _text(value: Any, field: str, limit: int, *, required: bool = False, label: str | None = None) -> str | None:
    if value is None:
        if required:
            raise UserError(f"Give the {label or field}", field=field)
        return None
    if not isinstance(value, str):
        raise UserError(f"The {label or field} must be text", field=field)
    text = value.strip()
    if not text:
        if required:
            raise UserError(f"Give the {label or field}", field=field)
        return None
    if "\n" in text or "\r" in text:
        raise UserError(f"The {label or field} must be one line", field=field)
    if len(text) > limit:
        raise UserError(f"The {label or field} is longer than {limit} characters", field=field)
    return text


def _notes(value: Any, field: str = "notes") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UserError("Notes must be text", field=field)
    text = value.strip()
    if len(text) > NOTES_MAX:
        raise UserError(f"Notes are longer than {NOTES_MAX} characters", field=field)
    return text or None


def order_moment(
    session: Session,
    value: date | datetime | str,
    field: str = "ordered_at",
    *,
    zone: ZoneInfo | None = None,
    now: datetime | None = None,
) -> tuple[datetime, date]:
    """When an order was placed, as (the moment in UTC to whole seconds, its day in the business time zone).

    The one reading of an order's date for every writer (API, pages, carts, imports): a date alone is the
    start of that day in the business time zone (Settings → General), so "2026-06-01" is 1 June wherever
    the business is; a date and time without a zone is that wall clock in the business time zone; with a
    zone, that moment. Text is ISO 8601 (2026-06-01, 2026/06/01, 2026-06-01 14:30, 2026-06-01T14:30Z).
    Refused, naming `field`, when it is not a date, before 1970, or later than now (`now`, default this
    machine's clock) plus CLOCK_SKEW, as another device's clock may run a little fast. `zone` saves a
    caller that reads many dates (an import) looking the business time zone up each time.
    """
    try:
        given = moment_value(value)
    except (ValueError, TypeError):
        shown = str(value)[:MOMENT_TEXT_MAX] if isinstance(value, str) else type(value).__name__
        raise UserError(f"'{shown}' is not a date: write it like 2026-01-31 or 2026-01-31 14:30", field=field) from None
    now = now or utcnow()
    if given.year < 1970:
        raise UserError("An order cannot be dated before 1970", field=field)
    if given.year > now.year + 1:
        raise UserError("An order cannot be dated in the future", field=field)
    zone = zone or business_zone(session)
    if isinstance(given, datetime):
        local = given.astimezone(zone) if given.tzinfo else given.replace(tzinfo=zone)
        day = local.date()
    else:
        local = datetime.combine(given, time(0), zone)
        day = given
    when = local.astimezone(timezone.utc).replace(microsecond=0)
    if when > now + CLOCK_SKEW:
        raise UserError("An order cannot be dated in the future", field=field)
    if when.year < 1970:
        raise UserError("An order cannot be dated before 1970", field=field)
    return when, day


def _day_of(session: Session, when: datetime) -> date:
    return when.astimezone(business_zone(session)).date()


# --- products --------------------------------------------------------------------------------------


def _find_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound("There is no such product", field="product_id")
    return product


def _refuse_taken_sku(session: Session, sku: str, product_id: int | None = None) -> None:
    taken = session.scalar(select(Product.id).where(Product.sku == sku))
    if taken is not None and taken != product_id:
        raise Conflict(f"Another product already has the SKU '{sku}'", field="sku")


def _reorder_days(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError("The reorder interval must be a whole number of days, such as 30", field="reorder_days")
    if not 1 <= value <= MAX_REORDER_DAYS:
        raise UserError(f"The reorder interval must be 1 to {MAX_REORDER_DAYS} days", field="reorder_days")
    return value


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"'{field}' must be true or false", field=field)
    return value


def _price_minor(price: Any, currency: str) -> int | None:
    if price is None or (isinstance(price, str) and not price.strip()):
        return None
    if isinstance(price, bool) or not isinstance(price, Decimal | str | int):
        raise UserError(f"'{price}' is not an amount of money", field="price")
    return to_minor(price, currency, field="price")


def create_product(
    session: Session,
    actor: Actor,
    *,
    sku: str,
    name: str,
    price: Decimal | str | None = None,
    currency: str | None = None,
    category: str | None = None,
    active: bool = True,
    reorder_days: int | None = None,
    placeholder: bool = False,
    catalog_product_id: str | None = None,
) -> Product:
    """Add a catalogue item. `price` is in major units (12.50) of `currency` (default: setting sales.currency);
    None leaves it unpriced (lines must then give a price). A SKU already taken is a 409 naming `sku`."""
    code = currency_code(currency) if currency is not None else shop_currency(session)
    values = {
        "sku": _text(sku, "sku", SKU_MAX, required=True, label="SKU"),
        "name": _text(name, "name", NAME_MAX, required=True),
        "price_minor": _price_minor(price, code),
        "currency": code,
        "category": _text(category, "category", CATEGORY_MAX),
        "active": _flag(active, "active"),
        "reorder_days": _reorder_days(reorder_days),
        "placeholder": _flag(placeholder, "placeholder"),
        "catalog_product_id": _text(catalog_product_id, "catalog_product_id", CATALOG_ID_MAX),
    }
    _refuse_taken_sku(session, values["sku"])
    now = _now()
    product = Product(**values, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(product)
            session.flush()
    except IntegrityError:  # the same SKU written a moment ago by another writer
        _refuse_taken_sku(session, values["sku"])
        raise
    record_by(session, actor, "product.created", f"product {product.id}", {"sku": product.sku})
    record_event(session, ProductChanged(product.id))
    return product


def update_product(session: Session, actor: Actor, product_id: int, **changes: Any) -> Product:
    """Change the fields given (create_product's names); None clears price, category, reorder_days and
    catalog_product_id. A placeholder stops being one when it is edited, unless `placeholder` is given.
    A currency change keeps the price's amount (12.50 EUR -> 12.50 USD), refused when it does not fit."""
    unknown = sorted(set(changes) - set(PRODUCT_FIELDS))
    if unknown:
        raise UserError(f"A product has no field '{unknown[0]}'", field=unknown[0])
    product = _find_product(session, product_id)
    values: dict[str, Any] = {}
    if "sku" in changes:
        values["sku"] = _text(changes["sku"], "sku", SKU_MAX, required=True, label="SKU")
    if "name" in changes:
        values["name"] = _text(changes["name"], "name", NAME_MAX, required=True)
    code = product.currency
    if "currency" in changes and changes["currency"] is not None:
        code = values["currency"] = currency_code(changes["currency"])
    if "price" in changes:
        values["price_minor"] = _price_minor(changes["price"], code)
    elif code != product.currency and product.price_minor is not None:
        values["price_minor"] = to_minor(from_minor(product.price_minor, product.currency), code, field="price")
    if "category" in changes:
        values["category"] = _text(changes["category"], "category", CATEGORY_MAX)
    if "active" in changes:
        values["active"] = _flag(changes["active"], "active")
    if "reorder_days" in changes:
        values["reorder_days"] = _reorder_days(changes["reorder_days"])
    if "catalog_product_id" in changes:
        values["catalog_product_id"] = _text(changes["catalog_product_id"], "catalog_product_id", CATALOG_ID_MAX)
    values["placeholder"] = _flag(changes["placeholder"], "placeholder") if "placeholder" in changes else False
    changed = {key: value for key, value in values.items() if getattr(product, key) != value}
    if not changed:
        return product
    if "sku" in changed:
        _refuse_taken_sku(session, changed["sku"], product.id)
    for key, value in changed.items():
        setattr(product, key, value)
    product.updated_at = _now()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        _refuse_taken_sku(session, product.sku, product.id)
        raise
    record_by(session, actor, "product.updated", f"product {product.id}", {"fields": sorted(changed)})
    record_event(session, ProductChanged(product.id))
    return product


def placeholder_products(session: Session, actor: Actor, skus: Iterable[str], currency: str) -> dict[str, Product]:
    """The products with these SKUs; an unknown SKU (a cart item the catalogue lacks) becomes an unpriced,
    active placeholder "Unknown product <sku>", flagged for the owner to complete. Keyed by the SKU as given
    (stripped)."""
    code = currency_code(currency)
    wanted: list[str] = []
    for sku in skus:
        text = _text(sku, "sku", SKU_MAX, required=True, label="SKU")
        if text not in wanted:
            wanted.append(text)
    found = (
        {product.sku: product for product in session.scalars(select(Product).where(Product.sku.in_(wanted)))}
        if wanted
        else {}
    )
    for sku in wanted:
        if sku in found:
            continue
        now = _now()
        product = Product(
            sku=sku,
            name=f"Unknown product {sku}"[:NAME_MAX],
            price_minor=None,
            currency=code,
            placeholder=True,
            active=True,
            created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(product)
                session.flush()
        except IntegrityError:  # made a moment ago by another cart
            found[sku] = session.scalars(select(Product).where(Product.sku == sku)).one()
            continue
        record_by(session, actor, "product.created", f"product {product.id}", {"sku": sku, "placeholder": True})
        record_event(session, ProductChanged(product.id))
        found[sku] = product
    return found


# --- order numbers ---------------------------------------------------------------------------------


def next_order_numbers(session: Session, count: int = 1) -> int:
    """Reserve `count` consecutive order numbers and return the first (1001 for the first order ever).

    The counter row is read with a row lock, so concurrent writers on MariaDB queue on it (SQLite has one
    writer at a time anyway); numbers already used by rows written without it (history, tests) are skipped.
    Imports reserve a block at once.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if session.scalar(select(Setting.key).where(Setting.key == COUNTER_KEY)) is None:
        _make_counter(session)
    row = session.scalars(select(Setting).where(Setting.key == COUNTER_KEY).with_for_update()).one()
    highest = session.scalar(select(func.max(Order.number))) or 0
    first = max(int(row.value), highest, FIRST_NUMBER - 1) + 1
    row.value = str(first + count - 1)
    session.flush()
    return first


def _make_counter(session: Session) -> None:
    """The counter row, made once. On MariaDB in a short transaction of its own: an insert that finds the key
    taken keeps a shared lock on it until its transaction ends, so two writers that both waited on the first
    one's insert would then both ask to lock the row for update and deadlock (a locking read of the missing
    row instead takes the gap, and two such then deadlock on their inserts). SQLite has one writer at a
    time, and this session may be it: there the insert joins its transaction."""
    counter = {"key": COUNTER_KEY, "value": str(FIRST_NUMBER - 1), "is_secret": False}
    if session.get_bind().dialect.name == "sqlite":
        try:
            with session.begin_nested():
                session.add(Setting(**counter))
                session.flush()
        except IntegrityError:
            pass
        return
    with session.get_bind().engine.connect() as connection:
        try:
            connection.execute(insert(Setting).values(**counter))
            connection.commit()
        except IntegrityError:  # another writer made it first
            connection.rollback()


# --- orders ----------------------------------------------------------------------------------------


def _find_order(session: Session, order_id: int) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("There is no such order", field="order_id")
    return order


def parse_quantity(value: Any, field: str) -> Decimal:
    """A line's quantity from JSON or a spreadsheet cell: more than 0, at most MAX_QUANTITY, at most
    QUANTITY_DECIMALS decimals. Any number, however large or long ("1e30"), is a refusal naming `field`."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise UserError("The quantity must be a number", field=field)
    try:
        if isinstance(value, Decimal):
            quantity = value
        elif isinstance(value, int):  # not through str(): Python refuses to print an int of 4,300 digits
            quantity = Decimal(value)
        else:
            quantity = Decimal(str(value).strip())
        if not quantity.is_finite():
            raise UserError(f"'{value}' is not a quantity", field=field)
        if quantity <= 0:
            raise UserError("The quantity must be more than 0", field=field)
        if quantity > MAX_QUANTITY:
            raise UserError(f"The quantity is more than SigDesk accepts (at most {MAX_QUANTITY:,})", field=field)
        step = Decimal(1).scaleb(-QUANTITY_DECIMALS)
        if quantity != quantity.quantize(step, rounding=ROUND_HALF_UP):
            raise UserError(f"A quantity has at most {QUANTITY_DECIMALS} decimals, not '{value}'", field=field)
        return quantity.quantize(step)
    except ArithmeticError:
        raise UserError(f"'{value}' is not a quantity", field=field) from None


def _lines(session: Session, lines: Sequence[LineIn] | None, currency: str) -> list[OrderLine]:
    """The lines as rows (not yet added), each judged on its own and against the order's currency."""
    if lines is None or not list(lines):
        raise UserError("An order needs at least one line", field="lines")
    if len(lines) > MAX_LINES:
        raise UserError(f"An order has at most {MAX_LINES} lines", field="lines")
    rows: list[OrderLine] = []
    for index, line in enumerate(lines):
        where = f"lines.{index}"
        if isinstance(line, dict):
            try:
                line = LineIn.model_validate(line)
            except ValidationError as invalid:
                first = invalid.errors()[0]
                place = ".".join(str(part) for part in (where, *first["loc"]))
                raise UserError(f"'{place}': {first['msg']}", field=place) from None
        if not isinstance(line, LineIn):
            raise UserError("Each line must give a quantity and a product or a description", field=where)
        if line.currency is not None and currency_code(line.currency, f"{where}.currency") != currency:
            raise UserError(
                f"The line is in {line.currency.strip().upper()} but the order is in {currency}",
                field=f"{where}.currency",
            )
        quantity = parse_quantity(line.quantity, f"{where}.quantity")
        product = None
        if line.product_id is not None:
            product = session.get(Product, line.product_id)
            if product is None:
                raise UserError(f"There is no product with id {line.product_id}", field=f"{where}.product_id")
        elif line.sku is not None and line.sku.strip():
            sku = line.sku.strip()
            product = session.scalars(select(Product).where(Product.sku == sku)).first()
            if product is None:
                raise UserError(f"There is no product with the SKU '{sku}'", field=f"{where}.sku")
        if product is not None and product.currency != currency:
            raise UserError(
                f"'{product.name}' is priced in {product.currency} but the order is in {currency}",
                field=f"{where}.product_id" if line.product_id is not None else f"{where}.sku",
            )
        list_minor = product.price_minor if product is not None else None
        if line.unit_price is not None:
            unit_minor = to_minor(line.unit_price, currency, field=f"{where}.unit_price")
        elif list_minor is not None:
            unit_minor = list_minor
        elif product is not None:
            raise UserError(f"'{product.name}' has no price yet: give the unit price", field=f"{where}.unit_price")
        else:
            raise UserError("Give the unit price of a line without a product", field=f"{where}.unit_price")
        reason = _text(line.price_reason, f"{where}.price_reason", REASON_MAX, label="reason for the price")
        if list_minor is not None and unit_minor != list_minor and reason is None:
            raise UserError("Say why the price differs from the product's price", field=f"{where}.price_reason")
        description = _text(line.description, f"{where}.description", NAME_MAX, label="description")
        if description is None:
            if product is None:
                raise UserError("Describe what was sold, or choose a product", field=f"{where}.description")
            description = product.name
        total = (quantity * unit_minor).to_integral_value(rounding=ROUND_HALF_UP)
        if total > MAX_MINOR:
            raise UserError(
                "The line's total (quantity × unit price) is more than SigDesk accepts for one amount",
                field=f"{where}.quantity",
            )
        rows.append(
            OrderLine(
                position=index + 1,
                product_id=product.id if product is not None else None,
                sku=product.sku if product is not None else None,
                description=description,
                quantity=quantity,
                unit_price_minor=unit_minor,
                list_price_minor=list_minor,
                price_reason=reason if unit_minor != list_minor or reason else None,
                total_minor=int(total),
            )
        )
    if sum(row.total_minor for row in rows) > MAX_MINOR:
        raise UserError("The order's total is more than SigDesk accepts for one amount", field="lines")
    return rows


def _implied_currency(session: Session, lines: Sequence[LineIn] | None) -> str:
    """An order's currency when none is given: its first line's (given, or its product's), else the setting."""
    for line in lines or ():
        if not isinstance(line, LineIn):
            continue
        if line.currency is not None:
            return currency_code(line.currency, "currency")
        product = None
        if line.product_id is not None:
            product = session.get(Product, line.product_id)
        elif line.sku is not None and line.sku.strip():
            product = session.scalars(select(Product).where(Product.sku == line.sku.strip())).first()
        if product is not None:
            return product.currency
    return shop_currency(session)


def _status(status: Any, field: str = "status") -> str:
    if status not in ORDER_STATUSES:
        raise UserError(f"'{status}' is not an order status: use one of {', '.join(ORDER_STATUSES)}", field=field)
    return status


def _history(session: Session, actor: Actor, order: Order, before: str | None, note: str | None) -> None:
    session.add(
        OrderStatusChange(
            order_id=order.id,
            from_status=before,
            to_status=order.status,
            changed_by=actor.user_id,
            actor=actor_words(session, actor)[:255],
            note=note,
            changed_at=_now(),
        )
    )


def create_order(
    session: Session,
    actor: Actor,
    contact_id: int,
    lines: Sequence[LineIn],
    *,
    source: str,
    status: str = "new",
    currency: str | None = None,
    ordered_at: date | datetime | str | None = None,
    notes: str | None = None,
    message_id: int | None = None,
    external_ref: str | None = None,
) -> Order:
    """Write an order for a contact with the next number, its lines, its total and the first step of its
    status history. Refuses an unknown contact or product, no lines, a line in another currency, a price
    with more decimals than the currency has, a changed price without a reason, and a date in the future.
    A cart message already made into an order is a 409 naming `message_id`."""
    if source not in ORDER_SOURCES:
        raise UserError(f"'{source}' is not an order source: use one of {', '.join(ORDER_SOURCES)}", field="source")
    status = _status(status)
    if isinstance(contact_id, bool) or not isinstance(contact_id, int) or session.get(Contact, contact_id) is None:
        raise UserError("There is no such contact", field="contact_id")
    code = currency_code(currency) if currency is not None else _implied_currency(session, lines)
    when, day = order_moment(session, ordered_at) if ordered_at is not None else (_now(), None)
    rows = _lines(session, lines, code)
    note_text = _notes(notes)
    ref = _text(external_ref, "external_ref", REF_MAX, label="reference")
    if message_id is not None and session.scalar(select(Order.id).where(Order.message_id == message_id)):
        raise Conflict("That message is already an order", field="message_id")
    now = _now()
    order = Order(
        contact_id=contact_id,
        status=status,
        source=source,
        currency=code,
        total_minor=sum(row.total_minor for row in rows),
        ordered_at=when,
        ordered_on=day or _day_of(session, when),
        notes=note_text,
        message_id=message_id,
        external_ref=ref,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    _insert_numbered(session, order)
    for row in rows:
        row.order_id = order.id
    session.add_all(rows)
    _history(session, actor, order, None, None)
    session.flush()
    record_by(
        session,
        actor,
        "order.created",
        f"order {order.id}",
        {"number": order.number, "contact_id": contact_id, "source": source, "lines": len(rows)},
    )
    record_event(session, OrderCreated(order.id, contact_id, source))
    return order


def _insert_numbered(session: Session, order: Order) -> None:
    """Insert with the next number; should a writer that bypassed the counter have taken it, take the next."""
    for attempt in range(NUMBER_ATTEMPTS):
        order.number = next_order_numbers(session)
        try:
            with session.begin_nested():
                session.add(order)
                session.flush()
            return
        except IntegrityError:
            if order.message_id is not None and session.scalar(
                select(Order.id).where(Order.message_id == order.message_id)
            ):
                raise Conflict("That message is already an order", field="message_id") from None
            if attempt == NUMBER_ATTEMPTS - 1:
                raise
            highest = session.scalar(select(func.max(Order.number)).with_for_update()) or 0
            row = session.get(Setting, COUNTER_KEY)
            if row is not None:
                row.value = str(max(int(row.value), highest))


def update_order(
    session: Session,
    actor: Actor,
    order_id: int,
    *,
    lines: Sequence[LineIn] | None = None,
    notes: Any = UNSET,
    ordered_at: date | datetime | str | None = None,
) -> Order:
    """Replace the lines (totals recomputed), the notes (None clears them) or the date of an order. Only what
    really changes is written and announced."""
    order = _find_order(session, order_id)
    changed: list[str] = []
    if lines is not None:
        rows = _lines(session, lines, order.currency)
        old = list(
            session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.position))
        )
        if [_line_key(row) for row in rows] != [_line_key(row) for row in old]:
            session.execute(delete(OrderLine).where(OrderLine.order_id == order.id))
            for row in rows:
                row.order_id = order.id
            session.add_all(rows)
            order.total_minor = sum(row.total_minor for row in rows)
            changed.append("lines")
    if notes is not UNSET:
        text = _notes(notes)
        if text != order.notes:
            order.notes = text
            changed.append("notes")
    if ordered_at is not None:
        when, day = order_moment(session, ordered_at)
        if (when, day) != (order.ordered_at, order.ordered_on):
            order.ordered_at = when
            order.ordered_on = day
            changed.append("ordered_at")
    if not changed:
        return order
    order.updated_at = _now()
    session.flush()
    record_by(session, actor, "order.updated", f"order {order.id}", {"number": order.number, "fields": changed})
    record_event(session, OrderChanged(order.id, order.contact_id))
    return order


def _line_key(row: OrderLine) -> tuple:
    return (
        row.product_id,
        row.description,
        Decimal(row.quantity),
        row.unit_price_minor,
        row.price_reason,
    )


def set_order_status(session: Session, actor: Actor, order_id: int, status: str, note: str | None = None) -> Order:
    """Move an order to another status, keeping a history row (who, when, why). The same status again
    changes nothing."""
    order = _find_order(session, order_id)
    status = _status(status)
    note_text = _text(note, "note", STATUS_NOTE_MAX)
    if status == order.status:
        return order
    before = order.status
    order.status = status
    order.updated_at = _now()
    _history(session, actor, order, before, note_text)
    session.flush()
    record_by(
        session,
        actor,
        "order.status_changed",
        f"order {order.id}",
        {"number": order.number, "from": before, "to": status},
    )
    record_event(session, OrderStatusChanged(order.id, order.contact_id, before, status))
    return order


def delete_order(session: Session, actor: Actor, order_id: int) -> None:
    """Delete an order with its lines and history (a mistake; a real cancellation is a status)."""
    order = _find_order(session, order_id)
    contact_id, number = order.contact_id, order.number
    session.execute(delete(OrderLine).where(OrderLine.order_id == order.id))
    session.execute(delete(OrderStatusChange).where(OrderStatusChange.order_id == order.id))
    session.delete(order)
    session.flush()
    record_by(session, actor, "order.deleted", f"order {order_id}", {"number": number, "contact_id": contact_id})
    record_event(session, OrderDeleted(order_id, contact_id))


# --- what other features ask of orders ---------------------------------------------------------------


def move_orders(session: Session, kept_id: int, merged_id: int) -> None:
    """A merge's mover: the merged contact's orders become the kept contact's (history, revenue and
    predictions follow the person, not the duplicate record)."""
    session.execute(
        update(Order)
        .where(Order.contact_id == merged_id)
        .values(contact_id=kept_id)
        .execution_options(synchronize_session=False)
    )


def erase_order_notes(session: Session, contact_id: int) -> None:
    """Anonymising keeps a contact's orders (the business's sales figures) but erases the one free text in
    them that may describe the person: the order notes and the status notes."""
    ids = select(Order.id).where(Order.contact_id == contact_id).scalar_subquery()
    session.execute(
        update(Order)
        .where(Order.contact_id == contact_id)
        .values(notes=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OrderStatusChange)
        .where(OrderStatusChange.order_id.in_(ids), OrderStatusChange.note.is_not(None))
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
