"""Products as a kind of import: `sku, name, price, currency, category, active, reorder_days`.

Rules, decided once here:

- A row finds its product by SKU: a new SKU creates the product (it needs a name), a known one is updated
  with the cells the row fills (an empty cell changes nothing). A later row with a SKU seen earlier in the
  file is refused as a duplicate of that line.
- Each row goes through the sales commands (create_product / update_product), so a product imported is
  checked exactly as one typed on the page or sent to the API, with its audit entry and `product.changed`
  event (a catalogue has hundreds of products, not hundreds of thousands: this is not the orders' path).
- `price` is in major units (12.50) of the row's currency (the `currency` column, else the product's, else
  the setting sales.currency); `active` reads yes/no, true/false, 1/0, active/inactive; `reorder_days` is a
  whole number of days.
- Undo deletes the products the import created that no order line names since (others are kept and
  counted), and puts back the fields of those it updated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.errors import UserError
from sigdesk.imports import mapping as mappings
from sigdesk.imports.kinds import Kind, register
from sigdesk.imports.reading import Row
from sigdesk.models import ImportJob, ImportRecord, ImportRejection
from sigdesk.models.sales import OrderLine, Product
from sigdesk.sales.commands import create_product, update_product

FIELDS = ("sku", "name", "price", "currency", "category", "active", "reorder_days")
SYNONYMS: dict[str, tuple[str, ...]] = {
    "sku": ("sku", "productretailerid", "retailerid", "productid", "productcode", "itemcode", "code", "article"),
    "name": ("name", "productname", "title", "item", "itemname", "product", "nombre", "nome", "bezeichnung"),
    "price": ("price", "unitprice", "precio", "preco", "preis", "amount"),
    "currency": ("currency", "cur", "ccy", "moneda", "wahrung", "waehrung", "moeda"),
    "category": ("category", "categoria", "kategorie", "group", "type"),
    "active": ("active", "enabled", "available", "activo", "aktiv"),
    "reorder_days": ("reorderdays", "reorderinterval", "reorder", "intervaldays", "interval"),
}
FLAGS = {
    "yes": True,
    "y": True,
    "true": True,
    "1": True,
    "active": True,
    "no": False,
    "n": False,
    "false": False,
    "0": False,
    "inactive": False,
}
# What undo puts back on a product the import updated.
KEPT = ("name", "price_minor", "currency", "category", "active", "reorder_days", "placeholder")


def _missing(fields: set[str]) -> str | None:
    return None if "sku" in fields else "Map a column to sku: products are found and created by their SKU"


SPEC = mappings.Spec(FIELDS, SYNONYMS, False, _missing)


@dataclass
class _Context:
    job: ImportJob
    mapped: list[tuple[int, str, str]]
    width: int


def _values(ctx: _Context, row: Row) -> dict[str, Any]:
    """The row's cells by field, typed; a UserError naming the column that is wrong."""
    cells = row.cells
    if len(cells) > ctx.width and any(cell.strip() for cell in cells[ctx.width :]):
        raise UserError(f"This row has {len(cells)} cells but the header names {ctx.width} columns")
    values: dict[str, Any] = {}
    for index, header, target in ctx.mapped:
        raw = cells[index].strip() if index < len(cells) else ""
        if target == mappings.IGNORE or not raw:
            continue
        if target == "active":
            if raw.lower() not in FLAGS:
                raise UserError(f"{header}: '{raw}' is not yes or no")
            values[target] = FLAGS[raw.lower()]
        elif target == "reorder_days":
            if not raw.isdigit():
                raise UserError(f"{header}: '{raw}' is not a whole number of days")
            values[target] = int(raw)
        else:
            values[target] = raw
    if "sku" not in values:
        raise UserError("The row has no SKU")
    return values


class ProductsKind(Kind):
    name = "products"
    label = "Products"
    spec = SPEC
    mode = "upsert"

    def options(self, session: Session, given: dict[str, Any]) -> dict[str, Any]:
        if given:
            raise UserError(f"'{sorted(given)[0]}' is not an option of a products import", field=sorted(given)[0])
        return {}

    def context(self, session: Session, job: ImportJob) -> _Context:
        return _Context(job, mappings.loads(job.mapping), len(json.loads(job.headers)))

    def prepare(self, ctx: _Context, session: Session, rows: list[Row]) -> list[Row]:
        return rows

    def write(self, session: Session, actor: Actor, ctx: _Context, prepared: list[Row]) -> dict[str, int]:
        job = ctx.job
        rejections: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        created = updated = 0
        earlier = _earlier_lines(session, job)
        for row in prepared:
            try:
                values = _values(ctx, row)
                sku = values["sku"]
                if sku in earlier:
                    where = f"line {earlier[sku]}" if earlier[sku] else "an earlier row of this file"
                    raise UserError(f"Duplicate of {where}: only the first row for a SKU is imported")
                product = session.scalar(select(Product).where(Product.sku == sku))
                with session.begin_nested():
                    if product is None:
                        if "name" not in values:
                            raise UserError("A new product needs a name")
                        made = create_product(session, actor, **values)
                        records.append({"job_id": job.id, "record_id": made.id, "created": True, "previous": None})
                        created += 1
                    else:
                        before = {key: getattr(product, key) for key in KEPT}
                        update_product(session, actor, product.id, **{k: v for k, v in values.items() if k != "sku"})
                        previous = json.dumps(before)
                        records.append(
                            {"job_id": job.id, "record_id": product.id, "created": False, "previous": previous}
                        )
                        updated += 1
                earlier[sku] = row.line
            except UserError as refused:
                reason = (
                    f"{refused.field}: {refused}"
                    if refused.field and refused.field not in str(refused)
                    else str(refused)
                )
                rejections.append(
                    {
                        "job_id": job.id,
                        "line": row.line,
                        "error": reason[:500],
                        "cells": json.dumps(row.cells, ensure_ascii=False),
                    }
                )
        if records:
            session.execute(insert(ImportRecord.__table__), records)
        if rejections:
            session.execute(insert(ImportRejection.__table__), rejections)
        return {"created": created, "updated": updated, "rejected": len(rejections)}

    def finished(self, session: Session, actor: Actor, job: ImportJob, state: str) -> None:
        details = {"state": state, "created": job.created, "updated": job.updated, "rejected": job.rejected}
        record_by(session, actor, "products.import.finish", f"import {job.id}", details)

    def undo_records(self, session: Session, actor: Actor, job: ImportJob, limit: int) -> int:
        records = session.execute(
            select(ImportRecord.id, ImportRecord.record_id, ImportRecord.created, ImportRecord.previous)
            .where(ImportRecord.job_id == job.id)
            .order_by(ImportRecord.id)
            .limit(limit)
        ).all()
        if not records:
            return 0
        made = [row.record_id for row in records if row.created]
        if made:
            used = set(session.scalars(select(OrderLine.product_id).where(OrderLine.product_id.in_(made)).distinct()))
            doomed = [product_id for product_id in made if product_id not in used]
            job.kept = (job.kept or 0) + len(made) - len(doomed)
            if doomed:
                session.execute(
                    delete(Product).where(Product.id.in_(doomed)).execution_options(synchronize_session=False)
                )
        for row in records:
            if not row.created and row.previous:
                session.execute(
                    update(Product)
                    .where(Product.id == row.record_id)
                    .values(**json.loads(row.previous))
                    .execution_options(synchronize_session=False)
                )
        session.execute(
            delete(ImportRecord)
            .where(ImportRecord.id.in_([row.id for row in records]))
            .execution_options(synchronize_session=False)
        )
        return len(records)


def _earlier_lines(session: Session, job: ImportJob) -> dict[str, int]:
    """SKUs this import wrote in earlier batches (line unknown there: 0 says 'an earlier batch')."""
    ids = select(ImportRecord.record_id).where(ImportRecord.job_id == job.id)
    return {sku: 0 for sku in session.scalars(select(Product.sku).where(Product.id.in_(ids)))}


register(ProductsKind())
