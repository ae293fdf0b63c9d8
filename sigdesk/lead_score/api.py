"""The lead score in the REST API (/api/v1): the rules (admins change them; everyone who sees contacts
reads them) and a contact's score with its reasons. Every write calls the same command as the page."""

from __future__ import annotations

from flask import Blueprint, request

from sigdesk.lead_score import commands, services
from sigdesk.lead_score.schemas import ContactPath, NewRule, RuleEdit, RuleList, RulePath, RuleRemoved
from sigdesk.lead_score.services import LeadScore, RuleData
from sigdesk.openapi import operation
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("lead_score_api", __name__, url_prefix="/api/v1")


def _body():
    return request.context.json  # type: ignore[attr-defined]


@bp.get("/lead-score-rules")
@requires("contacts.view")
@operation("listLeadScoreRules", (200, RuleList))
def list_rules():
    """Every lead score rule, in order"""
    session = db_session()
    return RuleList(items=[RuleData.of(rule, services.broken(session, rule)) for rule in services.list_rules(session)])


@bp.post("/lead-score-rules")
@requires("leadscore.manage")
@operation("createLeadScoreRule", (201, RuleData), json=NewRule, errors=(422,))
def create_rule():
    """Add a lead score rule (admins); the worker then rescores every contact

    An unknown tag, stage or custom field is a 422 naming `argument`; points beyond -100 to 100 a 422
    naming `points`.
    """
    body: NewRule = _body()
    with writing() as session:
        rule = commands.create_rule(session, acting(), body.kind, body.points, body.argument, body.label, body.position)
        return RuleData.of(rule), 201


@bp.patch("/lead-score-rules/<rule_id>")
@requires("leadscore.manage")
@operation("updateLeadScoreRule", (200, RuleData), path=RulePath, json=RuleEdit, errors=(404, 422))
def update_rule(rule_id: int):
    """Change a rule's points, argument, label or position (admins); its kind stays"""
    body: RuleEdit = _body()
    given = {key: getattr(body, key) for key in body.model_fields_set}
    if given.get("points", 0) is None:
        given.pop("points")
    if given.get("position", 0) is None:
        given.pop("position")
    with writing() as session:
        rule = commands.update_rule(session, acting(), rule_id, **given)
        return RuleData.of(rule)


@bp.delete("/lead-score-rules/<rule_id>")
@requires("leadscore.manage")
@operation("deleteLeadScoreRule", (200, RuleRemoved), path=RulePath, errors=(404,))
def delete_rule(rule_id: int):
    """Delete a rule (admins); the worker then rescores every contact"""
    with writing() as session:
        commands.delete_rule(session, acting(), rule_id)
    return RuleRemoved(id=rule_id)


@bp.get("/contacts/<contact_id>/lead-score")
@requires("contacts.view")
@operation("getLeadScore", (200, LeadScore), path=ContactPath, errors=(404,))
def lead_score(contact_id: int):
    """A contact's lead score (0 to 100; null: not scored yet) and the reasons that make it up"""
    return services.score_of(db_session(), contact_id)
