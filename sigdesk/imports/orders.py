"""Historical orders as a kind of import: `phone, ordered_at, sku, quantity, unit_price (or amount),
currency, order_ref` (and optionally status, description), one line of an order per row.

Rules, decided once here:

- Lines with the same order_ref make one order. Rows without an order_ref (no such column, or an empty
  cell) make one order per phone and moment (`ordered_at` as read): its reference is derived from them
  ("imp-" and a hash of the number and the moment in UTC, stable from one run to the next), so the same
  file imported again is recognised, and two orders of one customer at the same moment (the same day,
  when the file only has dates) become one. The order is the first line's phone, date, currency and
  status. A file is read in batches of 1,000 rows: an order whose lines come later in the file joins the
  order written from the earlier ones.
- An order_ref whose lines name two phones, or two moments, is refused as a whole in its batch (every
  line, naming both lines); a later line naming another phone or another moment than the order already
  imported from earlier batches is refused likewise (the lines imported before stay).
- An order_ref already used by an order from another import (or the API) is refused, so importing the
  same file twice does not double the history.
- `ordered_at` is read as every writer of orders reads it (sigdesk.sales.commands.order_moment): a date
  (2025-03-01, 2025/03/01) is the start of that day in the business time zone (Settings → General), a
  date and time (2025-03-01 14:30, ISO, with or without offset) without an offset is that wall clock
  there, and `ordered_on` is its day there. A moment in the future (beyond the clock skew the API
  allows) or before 1970 is refused.
- Unknown SKUs are refused with their reason (not made into placeholder products): a typo in a history
  file would otherwise fill the catalogue with junk; import products first (Settings → Import, products).
  `sku` may be left out (stores that only record totals): the line is then free text with its price.
- A line's price is `unit_price` (per unit) or `amount` (the line's total), in the line's currency (the
  `currency` column, else the import's currency, default the setting sales.currency). Without either,
  the product's price is used. A line naming a product priced in another currency than the line's is
  refused (as the sales commands refuse it), whether or not it gives its own price. A line in another
  currency than its order, a negative or zero quantity, a negative price and anything that is not a
  number are refused with the column's name. Totals are computed from the lines; a line or an order whose
  total would exceed sigdesk.sales.money.MAX_MINOR is refused, as is a number too large to compute with.
- Contacts are found by their normalised phone number and created when new (numbers without a country
  code are read in the import's country, default contacts.default_country); undo deletes those created
  that have no conversation since, as a contacts import's undo does.
- Speed: set-based writes per batch (orders, lines, status history, undo records: one executemany each);
  numbers are reserved as one block through sigdesk.sales.commands.next_order_numbers, the one sequence
  every writer of orders shares. One audit entry and one `orders.imported` event per import.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.contacts.fields import COUNTRIES, default_country
from sigdesk.contacts.phones import _SEPARATORS, normalise
from sigdesk.db import utcnow, write_lock
from sigdesk.errors import UserError
from sigdesk.events.catalogue import DomainEvent, OrdersImported, OrdersImportUndone
from sigdesk.events.outbox import record
from sigdesk.general.clock import business_zone
from sigdesk.imports import commands
from sigdesk.imports import mapping as mappings
from sigdesk.imports.kinds import Kind, register
from sigdesk.imports.reading import Row
from sigdesk.models import Contact, ImportChange, ImportJob, ImportRecord, ImportRejection
from sigdesk.models.sales import ORDER_STATUSES, Order, OrderLine, OrderStatusChange, Product
from sigdesk.sales.commands import actor_words, next_order_numbers, order_moment, parse_quantity
from sigdesk.sales.money import MAX_MINOR, currency_code, shop_currency, to_minor

FIELDS = (
    "phone",
    "ordered_at",
    "sku",
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "order_ref",
    "status",
    "description",
)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "phone": mappings.SYNONYMS["phone"],
    "ordered_at": (
        "orderedat",
        "date",
        "orderdate",
        "datetime",
        "ordered",
        "createdat",
        "timestamp",
        "time",
        "fecha",
        "datum",
        "data",
        "bestelldatum",
    ),
    "sku": ("sku", "productretailerid", "retailerid", "productid", "productcode", "itemcode", "article", "artikel"),
    "quantity": ("quantity", "qty", "units", "count", "cantidad", "menge", "quantidade", "anzahl"),
    "unit_price": ("unitprice", "price", "priceperunit", "precio", "preco", "preis", "einzelpreis"),
    "amount": ("amount", "total", "linetotal", "ordertotal", "value", "importe", "betrag", "valor", "sum"),
    "currency": ("currency", "cur", "ccy", "moneda", "wahrung", "waehrung", "moeda", "devise"),
    "order_ref": (
        "orderref",
        "orderid",
        "ordernumber",
        "orderno",
        "order",
        "reference",
        "ref",
        "invoice",
        "invoicenumber",
        "pedido",
        "bestellnummer",
    ),
    "status": ("status", "orderstatus", "state", "estado"),
    "description": ("description", "product", "productname", "item", "itemname", "descripcion", "beschreibung"),
}
MAX_REF = 100
DERIVED = "imp-"
LINE_WORDS = 255
# Phones read so far per running job (typed text -> wa_id or the refusal), kept across the worker's steps:
# a history names the same customers again and again, and reading a number is the costliest part of a line.
_phones: dict[int, dict[str, str | UserError]] = {}


def _missing(fields: set[str]) -> str | None:
    if "phone" not in fields:
        return "Map a column to phone: each order belongs to a customer's number"
    if "ordered_at" not in fields:
        return "Map a column to ordered_at: the date (or date and time) of each order"
    if "unit_price" in fields and "amount" in fields:
        return "Map a column to unit_price or to amount (the line's total), not both"
    if not fields & {"sku", "unit_price", "amount"}:
        return "Map a column to sku, unit_price or amount: a line needs a product or a price"
    return None


SPEC = mappings.Spec(FIELDS, SYNONYMS, False, _missing)
OPTIONS = ("country", "currency", "status")


@dataclass
class _Context:
    job: ImportJob
    mapped: list[tuple[int, str, str]]
    width: int
    country: str | None
    currency: str
    status: str
    zone: ZoneInfo
    products: dict[str, tuple[int, str, int | None, str]]
    phones: dict[str, str | UserError] = field(default_factory=dict)
    moments: dict[str, tuple[datetime, date] | UserError] = field(default_factory=dict)


@dataclass
class _Line:
    line: int
    cells: list[str]
    phone: str
    ordered_at: datetime
    ordered_on: date
    ref: str | None
    derived: bool
    currency: str
    status: str
    product: tuple[int, str, int | None, str] | None
    sku: str | None
    description: str
    quantity: Decimal
    unit_minor: int
    total_minor: int


@dataclass
class _Prepared:
    lines: list[_Line]
    rejections: list[dict[str, Any]]


class OrdersKind(Kind):
    name = "orders"
    label = "Orders (history)"
    spec = SPEC
    mode = "create"

    def form_options(self) -> tuple[str, ...]:
        return OPTIONS

    def form_defaults(self, session: Session) -> dict[str, str]:
        return {"currency": shop_currency(session), "status": "delivered"}

    def undone_events(self, job: ImportJob) -> list[DomainEvent]:
        """Forecasts and dashboards hear that the history shrank."""
        return [OrdersImportUndone(job.id, job.removed or 0)]

    def options(self, session: Session, given: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(OPTIONS))
        if unknown:
            raise UserError(f"'{unknown[0]}' is not an option of an orders import", field=unknown[0])
        country = given.get("country")
        if country is not None and not isinstance(country, str):
            raise UserError("Give the country as a two-letter code such as DE", field="country")
        country = (country or "").strip().upper() or default_country(session)
        if country is not None and country not in COUNTRIES:
            raise UserError("Give the country as a two-letter ISO code such as DE, US or BR", field="country")
        currency = given.get("currency")
        currency = currency_code(currency) if currency not in (None, "") else shop_currency(session)
        status = (given.get("status") or "delivered").strip().lower()
        if status not in ORDER_STATUSES:
            raise UserError(
                f"'{status}' is not an order status: use one of {', '.join(ORDER_STATUSES)}", field="status"
            )
        return {"country": country, "currency": currency, "status": status}

    def context(self, session: Session, job: ImportJob) -> _Context:
        options = json.loads(job.options or "{}")
        if len(_phones) > 8 and job.id not in _phones:  # left by jobs another process finished
            _phones.clear()
        mapped = mappings.loads(job.mapping)
        products: dict[str, tuple[int, str, int | None, str]] = {}
        if any(target == "sku" for _i, _h, target in mapped):
            for row in session.execute(
                select(Product.sku, Product.id, Product.name, Product.price_minor, Product.currency)
            ):
                products[row.sku] = (row.id, row.name, row.price_minor, row.currency)
        return _Context(
            job,
            mapped,
            len(json.loads(job.headers)),
            options.get("country"),
            options.get("currency") or shop_currency(session),
            options.get("status") or "delivered",
            business_zone(session),
            products,
            _phones.setdefault(job.id, {}),
        )

    def prepare(self, ctx: _Context, session: Session, rows: list[Row]) -> _Prepared:
        _known_phones(ctx, session, rows)
        prepared = _Prepared([], [])
        now = utcnow()
        for row in rows:
            try:
                prepared.lines.append(_parse(ctx, session, row, now))
            except UserError as refused:
                prepared.rejections.append(_rejection(ctx.job, row.line, row.cells, str(refused)))
            except (ArithmeticError, ValueError):
                reason = "A number in this row is too large (or not a number SigDesk can compute with)"
                prepared.rejections.append(_rejection(ctx.job, row.line, row.cells, reason))
        return prepared

    def write(self, session: Session, actor: Actor, ctx: _Context, prepared: _Prepared) -> dict[str, int]:
        return _write(session, actor, ctx, prepared)

    def finished(self, session: Session, actor: Actor, job: ImportJob, state: str) -> None:
        details = {
            "state": state,
            "orders": job.created,
            "lines": job.lines,
            "contacts_created": job.contacts_created,
            "rejected": job.rejected,
        }
        record_by(session, actor, "orders.import.finish", f"import {job.id}", details)
        _phones.pop(job.id, None)
        record(session, OrdersImported(job.created or 0))

    def undo_records(self, session: Session, actor: Actor, job: ImportJob, limit: int) -> int:
        """Delete a batch of the orders the import wrote (with their lines and history), before undo goes
        on to the contacts it created."""
        records = session.execute(
            select(ImportRecord.id, ImportRecord.record_id)
            .where(ImportRecord.job_id == job.id)
            .order_by(ImportRecord.id)
            .limit(limit)
        ).all()
        if not records:
            return 0
        ids = [row.record_id for row in records]
        for model, column in (
            (OrderStatusChange, OrderStatusChange.order_id),
            (OrderLine, OrderLine.order_id),
            (Order, Order.id),
        ):
            session.execute(delete(model).where(column.in_(ids)).execution_options(synchronize_session=False))
        session.execute(
            delete(ImportRecord)
            .where(ImportRecord.id.in_([row.id for row in records]))
            .execution_options(synchronize_session=False)
        )
        return len(records)


def _rejection(job: ImportJob, line: int, cells: list[str], reason: str) -> dict[str, Any]:
    return {"job_id": job.id, "line": line, "error": reason[:500], "cells": json.dumps(cells, ensure_ascii=False)}


def _known_phones(ctx: _Context, session: Session, rows: list[Row]) -> None:
    """Numbers of the batch that are a contact's wa_id as typed (+49 170 1234567, 0049..., or the national
    form with the default country's trunk 0) are taken as that wa_id without parsing them again: the
    stored wa_id was checked when it was stored. The others are read by normalise."""
    index = next((i for i, _h, target in ctx.mapped if target == "phone"), None)
    if index is None:
        return
    code = trunk = None
    if ctx.country:
        import phonenumbers

        meta = phonenumbers.PhoneMetadata.metadata_for_region(ctx.country)
        if meta is not None and meta.national_prefix == "0":
            code, trunk = str(meta.country_code), "0"
    fresh: dict[str, list[str]] = {}
    for row in rows:
        raw = row.cells[index].strip() if index < len(row.cells) else ""
        if not raw or raw in ctx.phones:
            continue
        compact = _SEPARATORS.sub("", raw)
        if compact.startswith("00"):
            compact = "+" + compact[2:]
        if compact.startswith("+"):
            digits = compact[1:]
        elif trunk and compact.startswith(trunk):
            digits = f"{code}{compact[1:]}"
        else:
            continue
        if digits.isdigit() and 8 <= len(digits) <= 15:
            fresh.setdefault(digits, []).append(raw)
    if not fresh:
        return
    with write_lock(session):  # a read on the worker's session takes SQLite's write lock: let go at once
        known = list(session.scalars(select(Contact.wa_id).where(Contact.wa_id.in_(sorted(fresh)))))
        session.commit()
    for wa_id in known:
        for raw in fresh[wa_id]:
            ctx.phones[raw] = wa_id


def _phone(ctx: _Context, raw: str, header: str) -> str:
    found = ctx.phones.get(raw)
    if found is None:
        try:
            found = normalise(raw, ctx.country)
        except UserError as refused:
            found = UserError(f"{header}: {refused}")
        ctx.phones[raw] = found
    if isinstance(found, UserError):
        raise found
    return found


def _moment(ctx: _Context, session: Session, raw: str, header: str, now: datetime) -> tuple[datetime, date]:
    found = ctx.moments.get(raw)
    if found is None:
        found = _read_moment(session, ctx.zone, raw, header, now)
        ctx.moments[raw] = found
    if isinstance(found, UserError):
        raise found
    return found


def _read_moment(
    session: Session, zone: ZoneInfo, raw: str, header: str, now: datetime
) -> tuple[datetime, date] | UserError:
    """The order's moment in UTC (to whole seconds) and its day in the business zone, read as every writer
    of orders reads it (sigdesk.sales.commands.order_moment: a date alone is the start of that day in the
    business zone), so an imported order and one sent to the API fall on the same day."""
    try:
        return order_moment(session, raw, "ordered_at", zone=zone, now=now)
    except UserError as refused:
        return UserError(f"{header}: {refused}")


def _parse(ctx: _Context, session: Session, row: Row, now: datetime) -> _Line:
    """A row as an order line, or a UserError naming the column that is wrong."""
    cells = row.cells
    if len(cells) > ctx.width and any(cell.strip() for cell in cells[ctx.width :]):
        raise UserError(f"This row has {len(cells)} cells but the header names {ctx.width} columns")
    given: dict[str, tuple[str, str]] = {}
    for index, header, target in ctx.mapped:
        if target == mappings.IGNORE or index >= len(cells):
            continue
        raw = cells[index].strip()
        if raw:
            given[target] = (header, raw)
    if "phone" not in given:
        raise UserError("The row has no phone number: an order belongs to a customer")
    if "ordered_at" not in given:
        raise UserError("The row has no date (ordered_at)")
    phone = _phone(ctx, given["phone"][1], given["phone"][0])
    ordered_at, ordered_on = _moment(ctx, session, given["ordered_at"][1], given["ordered_at"][0], now)
    ref = given["order_ref"][1] if "order_ref" in given else None
    if ref is not None and len(ref) > MAX_REF:
        raise UserError(f"{given['order_ref'][0]}: an order_ref has at most {MAX_REF} characters")
    derived = ref is None
    if ref is None:
        ref = derived_ref(phone, ordered_at)
    currency = ctx.currency
    if "currency" in given:
        header, raw = given["currency"]
        try:
            currency = currency_code(raw)
        except UserError as refused:
            raise UserError(f"{header}: {refused}") from None
    status = ctx.status
    if "status" in given:
        header, raw = given["status"]
        status = raw.lower()
        if status not in ORDER_STATUSES:
            raise UserError(f"{header}: '{raw}' is not an order status (use one of {', '.join(ORDER_STATUSES)})")
    quantity = Decimal(1)
    if "quantity" in given:
        header, raw = given["quantity"]
        if raw.startswith("-"):
            raise UserError(f"{header}: the quantity {raw} is negative (a return is not an order line)")
        try:
            quantity = parse_quantity(raw, "quantity")
        except UserError as refused:
            raise UserError(f"{header}: {refused}") from None
    product = None
    sku = given["sku"][1] if "sku" in given else None
    if sku is not None:
        product = ctx.products.get(sku)
        if product is None:
            raise UserError(
                f"{given['sku'][0]}: there is no product with the SKU '{sku}' "
                "(import the products first, or leave the SKU empty to keep the line as free text)"
            )
        if product[3] != currency:
            raise UserError(
                f"{given['sku'][0]}: the product '{sku}' is priced in {product[3]} but the line is in {currency} "
                f"(give the line in {product[3]}, or leave the SKU empty to keep the line as free text)"
            )
    unit_minor: int | None = None
    total_minor: int | None = None
    for target in ("unit_price", "amount"):
        if target in given:
            header, raw = given[target]
            try:
                minor = to_minor(raw, currency, target)
            except UserError as refused:
                raise UserError(f"{header}: {refused}") from None
            if target == "unit_price":
                unit_minor = minor
            else:
                total_minor = minor
                unit_minor = int((Decimal(minor) / quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if unit_minor is None:
        if product is None:
            raise UserError("The row has neither a product (sku) nor a price (unit_price or amount)")
        if product[2] is None:
            raise UserError(f"The product '{sku}' has no price: give the line's unit_price or amount")
        unit_minor = product[2]
    if total_minor is None:
        total_minor = int((Decimal(unit_minor) * quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if total_minor > MAX_MINOR:
        raise UserError(
            f"The line's total ({quantity.normalize():f} at {unit_minor} minor units of {currency}) is more than "
            "SigDesk accepts for one amount"
        )
    if "description" in given:
        description = given["description"][1][:LINE_WORDS]
    elif product is not None:
        description = product[1]
    else:
        description = "Imported order" if derived else f"Order {ref}"[:LINE_WORDS]
    return _Line(
        row.line,
        cells,
        phone,
        ordered_at,
        ordered_on,
        ref,
        derived,
        currency,
        status,
        product,
        sku,
        description,
        quantity,
        unit_minor,
        total_minor,
    )


def derived_ref(phone: str, ordered_at: datetime) -> str:
    """The reference of the order a row without an order_ref belongs to: the same for every line of that
    phone at that moment, in this file or the next import of it (opaque: a reference is shown, a phone
    number in it would be too)."""
    moment = ordered_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return DERIVED + hashlib.sha256(f"{phone}|{moment}".encode()).hexdigest()[:20]


@dataclass
class _Group:
    """The lines of one order in a batch (its first line decides phone, date, currency and status)."""

    ref: str
    lines: list[_Line]
    order_id: int | None = None
    contact_id: int | None = None


def _groups(lines: Iterable[_Line]) -> list[_Group]:
    groups: dict[Any, _Group] = {}
    for item in lines:
        key = ("ref", item.ref)
        group = groups.get(key)
        if group is None:
            groups[key] = _Group(item.ref, [item])
        else:
            group.lines.append(item)
    return list(groups.values())


def _named(group: _Group) -> str:
    first = group.lines[0]
    if first.derived:
        return f"the lines of this phone on {first.ordered_at:%Y-%m-%d %H:%M} UTC"
    return f"order_ref '{group.ref}'"


def _write(session: Session, actor: Actor, ctx: _Context, prepared: _Prepared) -> dict[str, int]:
    job = ctx.job
    rejections = prepared.rejections
    groups = _groups(prepared.lines)
    refs = sorted({group.ref for group in groups})
    # orders of this import from earlier batches (their later lines join them), and refs used elsewhere
    ours: dict[str, tuple[int, str, str, datetime, int]] = {}
    taken: dict[str, int] = {}
    for start in range(0, len(refs), 500):
        chunk = refs[start : start + 500]
        mine = select(ImportRecord.record_id).where(ImportRecord.job_id == job.id)
        for row in session.execute(
            select(
                Order.id,
                Order.external_ref,
                Order.number,
                Order.currency,
                Contact.wa_id,
                Order.id.in_(mine),
                Order.ordered_at,
                Order.total_minor,
            )
            .join(Contact, Contact.id == Order.contact_id)
            .where(Order.external_ref.in_(chunk))
        ):
            if row[5]:
                ours[row.external_ref] = (row.id, row.wa_id, row.currency, row.ordered_at, row.total_minor)
            else:
                taken.setdefault(row.external_ref, row.number)
    kept: list[_Group] = []

    def refuse(group: _Group, reason: str) -> None:
        for item in group.lines:
            rejections.append(_rejection(job, item.line, item.cells, reason))

    for group in groups:
        first = group.lines[0]
        if group.ref in taken:
            if first.derived:
                refuse(
                    group,
                    f"This phone's order of {first.ordered_at:%Y-%m-%d %H:%M} UTC is already order "
                    f"#{taken[group.ref]} (imported before)",
                )
            else:
                refuse(
                    group,
                    f"order_ref '{group.ref}' is already order #{taken[group.ref]} "
                    "(imported before, or made in SigDesk)",
                )
            continue
        other = next((item for item in group.lines if item.phone != first.phone), None)
        if other is not None:
            refuse(
                group,
                f"order_ref '{group.ref}' names two phone numbers (lines {first.line} and {other.line}): "
                "an order belongs to one customer, so none of its lines is imported",
            )
            continue
        other = next((item for item in group.lines if item.ordered_at != first.ordered_at), None)
        if other is not None:
            refuse(
                group,
                f"order_ref '{group.ref}' names two dates (lines {first.line} and {other.line}): "
                "an order happened once, so none of its lines is imported",
            )
            continue
        earlier = ours.get(group.ref)
        if earlier is not None and earlier[1] != first.phone:
            refuse(group, f"order_ref '{group.ref}' was imported from earlier lines for another phone number")
            continue
        if earlier is not None and earlier[3] != first.ordered_at:
            refuse(
                group,
                f"order_ref '{group.ref}' was imported from earlier lines with another date "
                f"({earlier[3]:%Y-%m-%d %H:%M} UTC)",
            )
            continue
        currency = earlier[2] if earlier is not None else first.currency
        lines = []
        for item in group.lines:
            if item.currency != currency:
                reason = f"This line is in {item.currency} but its order ({_named(group)}) is in {currency}"
                rejections.append(_rejection(job, item.line, item.cells, reason))
            else:
                lines.append(item)
        if not lines:
            continue
        group.lines = lines
        total = sum(item.total_minor for item in lines) + (earlier[4] if earlier is not None else 0)
        if total > MAX_MINOR:
            refuse(group, f"The total of {_named(group)} would be more than SigDesk accepts for one amount")
            continue
        if earlier is not None:
            group.order_id = earlier[0]
        kept.append(group)
    now = utcnow().replace(microsecond=0)
    new = [group for group in kept if group.order_id is None]
    added = [group for group in kept if group.order_id is not None]
    created_contacts = _contacts(session, job, kept, now)
    if new:
        first_number = next_order_numbers(session, len(new))
        numbers = {first_number + index: group for index, group in enumerate(new)}
        session.execute(
            insert(Order.__table__),
            [
                {
                    "number": number,
                    "contact_id": group.contact_id,
                    "status": group.lines[0].status,
                    "source": "import",
                    "currency": group.lines[0].currency,
                    "total_minor": sum(item.total_minor for item in group.lines),
                    "ordered_at": group.lines[0].ordered_at,
                    "ordered_on": group.lines[0].ordered_on,
                    "external_ref": group.ref,
                    "created_by": actor.user_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for number, group in numbers.items()
            ],
        )
        for order_id, number in session.execute(
            select(Order.id, Order.number).where(Order.number.between(first_number, first_number + len(new) - 1))
        ):
            numbers[number].order_id = order_id
        who = actor_words(session, actor)[:255]
        session.execute(
            insert(OrderStatusChange.__table__),
            [
                {
                    "order_id": group.order_id,
                    "from_status": None,
                    "to_status": group.lines[0].status,
                    "changed_by": actor.user_id,
                    "actor": who,
                    "note": f"Imported from {job.file_name}"[:500],
                    "changed_at": now,
                }
                for group in new
            ],
        )
        session.execute(
            insert(ImportRecord.__table__),
            [{"job_id": job.id, "record_id": group.order_id, "created": True, "previous": None} for group in new],
        )
    positions: dict[int, int] = {}
    if added:
        ids = [group.order_id for group in added]
        positions = dict(
            session.execute(
                select(OrderLine.order_id, func.max(OrderLine.position))
                .where(OrderLine.order_id.in_(ids))
                .group_by(OrderLine.order_id)
            ).all()
        )
        session.execute(
            update(Order.__table__)
            .where(Order.__table__.c.id == bindparam("_id"))
            .values(total_minor=Order.__table__.c.total_minor + bindparam("_add"), updated_at=now),
            [{"_id": group.order_id, "_add": sum(item.total_minor for item in group.lines)} for group in added],
        )
    line_rows = []
    for group in kept:
        position = positions.get(group.order_id, 0)  # type: ignore[arg-type]
        for item in group.lines:
            position += 1
            list_price = item.product[2] if item.product is not None else None
            line_rows.append(
                {
                    "order_id": group.order_id,
                    "position": position,
                    "product_id": item.product[0] if item.product is not None else None,
                    "sku": item.sku,
                    "description": item.description,
                    "quantity": item.quantity,
                    "unit_price_minor": item.unit_minor,
                    "list_price_minor": list_price,
                    "price_reason": "Imported price"
                    if list_price is not None and list_price != item.unit_minor
                    else None,
                    "total_minor": item.total_minor,
                }
            )
    if line_rows:
        session.execute(insert(OrderLine.__table__), line_rows)
    if rejections:
        session.execute(insert(ImportRejection.__table__), rejections)
    return {
        "created": len(new),
        "lines": len(line_rows),
        "contacts_created": created_contacts,
        "rejected": len(rejections),
    }


def _contacts(session: Session, job: ImportJob, groups: list[_Group], now: datetime) -> int:
    """Each group's contact by phone, creating the new ones (recorded for undo as a contacts import
    records them); returns how many were created."""
    phones = sorted({group.lines[0].phone for group in groups if group.lines})
    if not phones:
        return 0
    ids = dict(session.execute(select(Contact.wa_id, Contact.id).where(Contact.wa_id.in_(phones))).all())
    missing = [phone for phone in phones if phone not in ids]
    if missing:
        made = commands._create(session, [commands._Parsed(0, [], {"wa_id": phone}) for phone in missing], [], now)
        ids.update(made)
        session.execute(
            insert(ImportChange.__table__),
            [
                {"job_id": job.id, "contact_id": made[phone], "created": True, "previous": None, "added": None}
                for phone in missing
            ],
        )
    for group in groups:
        if group.lines:
            group.contact_id = ids[group.lines[0].phone]
    return len(missing)


register(OrdersKind())
