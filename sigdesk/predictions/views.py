"""The Reorders section: "Due to reorder" (the current forecasts, most likely first, with a one-click way into
the customer's thread and a suggested message) and "Accuracy" (how the predictions of the last 30 and 90 days
came true on the shop's own orders). Both read what the background refresh stored; a request computes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from pydantic import BaseModel

from sigdesk.db import utcnow
from sigdesk.errors import UserError
from sigdesk.openapi import ui_call
from sigdesk.outbound.window import window_open
from sigdesk.models import Conversation
from sigdesk.predictions import services
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("predictions", __name__, url_prefix="/reorders")

PAGE = 100


class RefreshData(BaseModel):
    state: str
    processed: int
    total: int
    as_of: str | None
    finished_at: str | None
    error: str | None
    customers: int


def _number(name: str, low: float, high: float, default: float, whole: bool = True) -> float:
    text = request.args.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole and text.isascii() and text.isdigit() else float(text)
    except ValueError:
        raise UserError(f"'{name}': '{text[:20]}' is not a number", 400, name) from None
    if whole and value != int(value) or not low <= value <= high:
        raise UserError(f"'{name}': give a number from {low:g} to {high:g}", 400, name)
    return value


def _after() -> tuple[float, int] | None:
    text = request.args.get("after", "").strip()
    if not text:
        return None
    probability, _, contact = text.partition(":")
    try:
        found = (float(probability), int(contact))
    except ValueError:
        raise UserError("'after': not a list position SigDesk gave out", 400, "after") from None
    if not (0 <= found[0] <= 1 and found[1] >= 0):
        raise UserError("'after': not a list position SigDesk gave out", 400, "after")
    return found


@bp.get("/")
@requires("contacts.view")
def due():
    session = db_session()
    current = services.status(session)
    offered = current.horizons
    default_horizon = 30 if 30 in offered else (offered[0] if offered else 30)
    horizon = int(_number("horizon", 1, 365, default_horizon))
    if offered and horizon not in offered:
        raise UserError(
            f"'horizon': forecasts are kept for {', '.join(map(str, offered))} days; choose one of those",
            400,
            "horizon",
        )
    sku = request.args.get("product", "").strip() or None
    products = services.product_choices(session)
    if sku is not None and sku not in {choice for choice, _ in products}:
        services.check_sku(session, sku)
    minimum = _number("min", 0, 100, 0, whole=False)
    risk = request.args.get("risk") == "1"
    filters = services.DueFilters(horizon=horizon, sku=sku, min_probability=minimum / 100, at_risk_only=risk)
    rows, following, total = services.due_list(session, filters, PAGE, _after())
    names = dict(products)
    windows = _windows(session, [row.conversation_id for row in rows if row.conversation_id])
    templates = services.reminder_templates(session)
    shown = [
        {
            "row": row,
            "message": services.suggested_message(row, names.get(sku) if sku else None),
            "window_open": windows.get(row.conversation_id, False),
            "templates": [
                template for template in templates if services.may_remind(template, row.consent, row.opted_out)
            ],
        }
        for row in rows
    ]
    return render_template(
        "predictions/due.html",
        status=current,
        rows=shown,
        total=total,
        filters=filters,
        minimum=minimum,
        horizons=offered,
        products=products,
        following=f"{following[0]!r}:{following[1]}" if following else None,
        args={key: value for key, value in request.args.items() if key != "after"},
    )


def _windows(session: Any, conversation_ids: list[int]) -> dict[int, bool]:
    from sqlalchemy import select

    if not conversation_ids:
        return {}
    found = session.scalars(select(Conversation).where(Conversation.id.in_(conversation_ids)))
    now = utcnow()
    return {conversation.id: window_open(conversation, now) for conversation in found}


@bp.get("/accuracy")
@requires("contacts.view")
def accuracy():
    session = db_session()
    return render_template(
        "predictions/accuracy.html", status=services.status(session), accuracy=services.latest_accuracy(session)
    )


@bp.get("/status")
@requires("contacts.view")
@ui_call("reorderRefreshStatus", (200, RefreshData))
def status():
    response = jsonify(services.status(db_session()).as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/refresh")
@requires("contacts.view")
def refresh():
    """Ask the worker for a refresh now (it runs in the background; the page shows its progress)."""
    with writing() as session:
        services.request_refresh(session, "page", utcnow() - services.DEBOUNCE)
    flash("Refreshing the predictions in the background; this page shows the progress.")
    back = "predictions.accuracy" if request.form.get("back") == "accuracy" else "predictions.due"
    return redirect(url_for(back))


@bp.post("/<int:contact_id>/remind")
@requires("contacts.view")
def remind(contact_id: int):
    """Queue an approved template as a reminder (outside the 24-hour window, within consent); the send is the
    inbox's own, audited and announced the same way."""
    text = request.form.get("template_id", "")
    if not (text.isascii() and text.isdigit()):
        raise UserError("'template_id': choose a template", 400, "template_id")
    with writing() as session:
        services.send_reminder(session, acting(), contact_id, int(text))
    flash("Reminder queued: it shows in the customer's thread.")
    return redirect(url_for("predictions.due"))
