"""Settings → Lead score: the admins' page for the rules, with how many contacts each rule matches now.

Plain form posts (CSRF-checked by the app's hook). A refused form comes back on the page with the message
by that form and what was typed; a done one redirects back with a flash. Scores are recomputed by the
worker after each change, not here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sigdesk.errors import UserError
from sigdesk.lead_score import commands, services
from sigdesk.lead_score.scoring import Rule, count_matching
from sigdesk.lead_score.services import KINDS, LeadReason, read_reasons
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("lead_score", __name__, url_prefix="/admin")


def lead_reasons(text: str | None) -> list[LeadReason]:
    """The template filter that reads a contact's stored reasons (the inbox panel shows them)."""
    return read_reasons(text)


def _whole(name: str, optional: bool = False) -> int | None:
    """A whole number typed into a form (a minus sign allowed), or a refusal naming the field."""
    text = request.form.get(name, "").strip()
    if optional and not text:
        return None
    digits = text[1:] if text[:1] in "-+" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
        raise UserError(f"'{name}' must be a whole number", field=name)
    return int(text)


def _page(refused: UserError | None = None, form: str = ""):
    session = db_session()
    rules = services.list_rules(session)
    context: dict[str, Any] = {
        "rules": rules,
        "kinds": KINDS,
        "counts": count_matching(session, [Rule.of(rule) for rule in rules if rule.kind in KINDS]),
        "notes": {rule.id: services.broken(session, rule) for rule in rules},
        "refused": {"form": form, "message": str(refused), "field": refused.field, "typed": request.form}
        if refused
        else None,
    }
    return render_template("lead_score/rules.html", **context), (refused.status if refused else 200)


def _post(form: str, change, done):
    try:
        with writing() as session:
            message = done(change(session))
    except UserError as refused:
        return _page(refused, form)
    flash(message)
    return redirect(url_for("lead_score.rules"))


@bp.get("/lead-score")
@requires("leadscore.manage")
def rules():
    return _page()


@bp.post("/lead-score")
@requires("leadscore.manage")
def create_rule():
    return _post(
        "rule-new",
        lambda session: commands.create_rule(
            session,
            acting(),
            request.form.get("kind", ""),
            _whole("points"),
            request.form.get("argument") or None,
            request.form.get("label") or None,
        ),
        lambda rule: f"Added the rule {rule.label}. Scores are being recomputed.",
    )


@bp.post("/lead-score/<int:rule_id>")
@requires("leadscore.manage")
def update_rule(rule_id: int):
    def change(session):
        changes: dict[str, Any] = {"points": _whole("points"), "label": request.form.get("label") or None}
        if "argument" in request.form:
            changes["argument"] = request.form.get("argument") or None
        position = _whole("position", optional=True)
        if position is not None:
            changes["position"] = position
        return commands.update_rule(session, acting(), rule_id, **changes)

    return _post(f"rule-{rule_id}", change, lambda rule: f"Saved the rule {rule.label}.")


@bp.post("/lead-score/<int:rule_id>/delete")
@requires("leadscore.manage")
def delete_rule(rule_id: int):
    return _post(
        f"rule-{rule_id}",
        lambda session: commands.delete_rule(session, acting(), rule_id),
        lambda _: "Deleted the rule. Scores are being recomputed.",
    )
