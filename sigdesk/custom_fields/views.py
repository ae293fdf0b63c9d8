"""Settings → Contact fields: the admins' page for custom contact fields (fields.manage).

Plain form posts (CSRF-checked by the app's hook). A refused form comes back with the message by the field
at fault and everything typed; a done one redirects with a flash. Deleting asks first, on a page that says
how many contacts have a value and which saved segments use the field.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sigdesk.custom_fields import commands, services
from sigdesk.custom_fields.services import KIND_LABELS, FieldDefinition
from sigdesk.errors import UserError
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("custom_fields", __name__, url_prefix="/admin/contact-fields")


def _position() -> int | None:
    text = request.form.get("position", "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise UserError("'position' must be a whole number", field="position")
    return int(text)


def _options() -> list[str] | None:
    if request.form.get("kind") not in ("choice", "choices"):
        return None  # the part of the form the kind hides
    lines = [line.strip() for line in request.form.get("options", "").splitlines()]
    return [line for line in lines if line] or None


def _pattern() -> str | None:
    return request.form.get("pattern", "") if request.form.get("kind") in ("text", "link") else None


def _currency() -> str | None:
    return (request.form.get("currency", "").strip() or None) if request.form.get("kind") == "currency" else None


def _typed(row: FieldDefinition | None = None) -> dict[str, Any]:
    """What the form shows: what was typed if it came back, else the stored definition."""
    if request.method == "POST":
        return {
            "label": request.form.get("label", ""),
            "key": request.form.get("key", ""),
            "kind": request.form.get("kind", "text"),
            "required": request.form.get("required") == "true",
            "pattern": request.form.get("pattern", ""),
            "options": request.form.get("options", ""),
            "currency": request.form.get("currency", ""),
            "position": request.form.get("position", ""),
        }
    if row is None:
        return {"kind": "text", "required": False}
    return {
        "label": row.label,
        "key": row.key,
        "kind": row.kind,
        "required": row.required,
        "pattern": row.pattern or "",
        "options": "\n".join(row.options),
        "currency": row.currency or "",
        "position": row.position,
    }


def _index(refused: UserError | None = None):
    session = db_session()
    page = render_template(
        "custom_fields/index.html",
        fields=services.definitions(session),
        counts=services.value_counts(session),
        kinds=KIND_LABELS,
        typed=_typed(),
        refused=refused,
    )
    return page, (refused.status if refused else 200)


@bp.get("")
@requires("fields.manage")
def index():
    return _index()


@bp.post("")
@requires("fields.manage")
def create():
    try:
        with writing() as session:
            row = commands.define_field(
                session,
                acting(),
                request.form.get("label", ""),
                request.form.get("kind", ""),
                key=request.form.get("key", "").strip() or None,
                required=request.form.get("required") == "true",
                pattern=_pattern(),
                options=_options(),
                currency=_currency(),
                position=_position(),
            )
            label = row.label
    except UserError as refused:
        return _index(refused)
    flash(f"Added the field {label}.")
    return redirect(url_for("custom_fields.index"))


def _edit_page(field_id: int, refused: UserError | None = None):
    session = db_session()
    row = FieldDefinition.of(services.get_field(session, field_id))
    page = render_template(
        "custom_fields/edit.html",
        field=row,
        count=services.value_count(session, field_id),
        kinds=KIND_LABELS,
        typed=_typed(row),
        refused=refused,
    )
    return page, (refused.status if refused else 200)


@bp.get("/<int:field_id>")
@requires("fields.manage")
def edit(field_id: int):
    return _edit_page(field_id)


@bp.post("/<int:field_id>")
@requires("fields.manage")
def update(field_id: int):
    try:
        with writing() as session:
            row = commands.update_field(
                session,
                acting(),
                field_id,
                label=request.form.get("label", ""),
                key=request.form.get("key", "").strip(),
                kind=request.form.get("kind", ""),
                required=request.form.get("required") == "true",
                pattern=_pattern(),
                options=_options(),
                currency=_currency(),
                position=_position(),
            )
            label = row.label
    except UserError as refused:
        if refused.status == 404:
            raise
        return _edit_page(field_id, refused)
    flash(f"Saved the field {label}.")
    return redirect(url_for("custom_fields.index"))


@bp.get("/<int:field_id>/delete")
@requires("fields.manage")
def confirm_delete(field_id: int):
    row, count, users = commands.deletion_impact(db_session(), field_id)
    return render_template("custom_fields/delete.html", field=FieldDefinition.of(row), count=count, users=users)


@bp.post("/<int:field_id>/delete")
@requires("fields.manage")
def delete(field_id: int):
    with writing() as session:
        label = services.get_field(session, field_id).label
        count = commands.delete_field(session, acting(), field_id)
    flash(f"Deleted the field {label} and its values on {count} contact(s).")
    return redirect(url_for("custom_fields.index"))
