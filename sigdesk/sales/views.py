"""Settings → Products: the admins' catalogue page (products.manage).

Plain form posts (CSRF-checked by the app's hook) calling the same commands as the API. A refused form comes
back with the message by the field at fault, in the red error style, and everything typed; a done one
redirects with a flash. Placeholders (made from unknown items in customers' carts) are flagged for the owner to
complete; saving one clears the flag.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sigdesk.errors import UserError
from sigdesk.paging import Cursor
from sigdesk.sales import commands, services
from sigdesk.sales.money import shop_currency
from sigdesk.sales.services import ProductData
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("products", __name__, url_prefix="/admin/products")

PAGE_SIZE = 50
FIELDS = ("sku", "name", "price", "currency", "category", "reorder_days", "catalog_product_id")


def _reorder_days(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise UserError("The reorder interval must be 1 day or more", field="reorder_days")
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise UserError("The reorder interval must be a whole number of days, such as 30", field="reorder_days")
    return int(text)


def _form() -> dict[str, Any]:
    """The form's fields as create_product and update_product take them (empty text: none)."""
    form = request.form
    return {
        "sku": form.get("sku", ""),
        "name": form.get("name", ""),
        "price": form.get("price", "").strip() or None,
        "currency": form.get("currency", "").strip() or None,
        "category": form.get("category", "").strip() or None,
        "active": form.get("active") == "true",
        "reorder_days": _reorder_days(form.get("reorder_days", "")),
        "catalog_product_id": form.get("catalog_product_id", "").strip() or None,
    }


def _typed(product: ProductData | None = None) -> dict[str, Any]:
    """What the form shows: what was typed if it came back, else the stored product (or a new one's defaults)."""
    if request.method == "POST":
        typed: dict[str, Any] = {name: request.form.get(name, "") for name in FIELDS}
        typed["active"] = request.form.get("active") == "true"
        return typed
    if product is None:
        return {"currency": shop_currency(db_session()), "active": True}
    return {
        "sku": product.sku,
        "name": product.name,
        "price": product.price or "",
        "currency": product.currency,
        "category": product.category or "",
        "reorder_days": product.reorder_days or "",
        "catalog_product_id": product.catalog_product_id or "",
        "active": product.active,
    }


def _index(refused: UserError | None = None):
    session = db_session()
    q = request.args.get("q", "")[:255]
    only = request.args.get("show", "")
    cursor = request.args.get("cursor", "")
    try:
        found = services.list_products(
            session,
            q,
            active=None if only not in ("active", "inactive") else only == "active",
            placeholder=True if only == "placeholders" else None,
            cursor=Cursor.decode(cursor) if cursor else None,
            limit=PAGE_SIZE,
        )
    except UserError:
        return redirect(url_for("products.index", q=q or None, show=only or None))
    placeholders = services.list_products(session, placeholder=True, limit=1).items
    page = render_template(
        "products/index.html",
        products=found.items,
        next_cursor=found.next_cursor,
        q=q,
        show=only,
        any_placeholder=bool(placeholders),
        typed=_typed(),
        refused=refused,
    )
    return page, (refused.status if refused else 200)


@bp.get("")
@requires("products.manage")
def index():
    return _index()


@bp.post("")
@requires("products.manage")
def create():
    try:
        with writing() as session:
            product = commands.create_product(session, acting(), **_form())
            name = product.name
    except UserError as refused:
        return _index(refused)
    flash(f"Added the product {name}.")
    return redirect(url_for("products.index"))


def _edit_page(product_id: int, refused: UserError | None = None):
    product = ProductData.of(services.get_product(db_session(), product_id))
    page = render_template("products/edit.html", product=product, typed=_typed(product), refused=refused)
    return page, (refused.status if refused else 200)


@bp.get("/<int:product_id>")
@requires("products.manage")
def edit(product_id: int):
    return _edit_page(product_id)


@bp.post("/<int:product_id>")
@requires("products.manage")
def update(product_id: int):
    try:
        with writing() as session:
            product = commands.update_product(session, acting(), product_id, **_form())
            name = product.name
    except UserError as refused:
        if refused.status == 404:
            raise
        return _edit_page(product_id, refused)
    flash(f"Saved the product {name}.")
    return redirect(url_for("products.index"))


@bp.post("/<int:product_id>/active")
@requires("products.manage")
def toggle_active(product_id: int):
    """Take a product off the pickers (inactive) or put it back, from the list."""
    active = request.form.get("active") == "true"
    with writing() as session:
        placeholder = services.get_product(session, product_id).placeholder  # switching it is not completing it
        product = commands.update_product(session, acting(), product_id, active=active, placeholder=placeholder)
        name = product.name
    flash(f"{name} is {'active' if active else 'inactive'}.")
    return redirect(url_for("products.index", q=request.form.get("q") or None, show=request.form.get("show") or None))
