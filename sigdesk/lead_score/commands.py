"""Changes to the lead score rules, one function each, taking (session, actor, ...); the caller commits.

Admins keep the rules (leadscore.manage); each command checks the actor's role itself, so the CLI and the
worker cannot step past the rule the pages and the API declare. Every change is audited and announced
(lead_score.rules_changed), and the worker then rescores everyone: never the request.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.positions import place
from sigdesk.db import utcnow
from sigdesk.errors import Refused, UserError
from sigdesk.events.catalogue import LeadScoreRulesChanged
from sigdesk.events.outbox import record
from sigdesk.lead_score.services import (
    clean_argument,
    clean_kind,
    clean_label,
    clean_points,
    default_label,
    get_rule,
    list_rules,
)
from sigdesk.models import LeadScoreRule
from sigdesk.roles import can

_UNSET = object()


def _require(actor: Actor) -> None:
    if actor.user is not None and not can(actor.user.role, "leadscore.manage"):
        raise UserError("Your role does not allow this", status=403)


def _detail(rule: LeadScoreRule) -> dict:
    return {"kind": rule.kind, "argument": rule.argument, "points": rule.points, "label": rule.label}


def create_rule(
    session: Session,
    actor: Actor,
    kind: object,
    points: object,
    argument: object = None,
    label: object = None,
    position: object = None,
) -> LeadScoreRule:
    """A new rule, last unless `position` (1 first) says where; without a label it says what it checks."""
    _require(actor)
    kind = clean_kind(kind)
    argument = clean_argument(session, kind, argument)
    points = clean_points(points)
    label = clean_label(label, default_label(kind, argument))
    rules = list_rules(session)
    rule = LeadScoreRule(
        kind=kind, argument=argument, points=points, label=label, position=len(rules) + 1, created_at=utcnow()
    )
    session.add(rule)
    session.flush()
    if position is not None:
        place(rules, rule, position, Refused)
        session.flush()
    record_by(session, actor, "leadscore.rule.create", f"lead score rule {rule.id}", _detail(rule))
    record(session, LeadScoreRulesChanged(rule.id, "created"))
    return rule


def update_rule(
    session: Session,
    actor: Actor,
    rule_id: int,
    points: object = _UNSET,
    argument: object = _UNSET,
    label: object = _UNSET,
    position: object = _UNSET,
) -> LeadScoreRule:
    """Change what is given of a rule (its kind stays: a different check is a new rule)."""
    _require(actor)
    rule = get_rule(session, rule_id)
    before = _detail(rule) | {"position": rule.position}
    if argument is not _UNSET:
        rule.argument = clean_argument(session, rule.kind, argument)
    if points is not _UNSET:
        rule.points = clean_points(points)
    if label is not _UNSET:
        rule.label = clean_label(label, default_label(rule.kind, rule.argument))
    if position is not _UNSET and position is not None:
        place(list_rules(session), rule, position, Refused)
    session.flush()
    after = _detail(rule) | {"position": rule.position}
    changes = {key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]}
    if changes:
        record_by(session, actor, "leadscore.rule.update", f"lead score rule {rule.id}", changes)
        record(session, LeadScoreRulesChanged(rule.id, "moved" if set(changes) == {"position"} else "changed"))
    return rule


def delete_rule(session: Session, actor: Actor, rule_id: int) -> None:
    _require(actor)
    rule = get_rule(session, rule_id)
    detail = _detail(rule)
    session.delete(rule)
    session.flush()
    for number, item in enumerate(list_rules(session), start=1):
        item.position = number
    session.flush()
    record_by(session, actor, "leadscore.rule.delete", f"lead score rule {rule_id}", detail)
    record(session, LeadScoreRulesChanged(rule_id, "deleted"))


def reorder_rules(session: Session, actor: Actor, rule_ids: Sequence[int]) -> list[LeadScoreRule]:
    """Put every rule in the order given (the order of the reasons); the list names each rule once."""
    _require(actor)
    rules = {rule.id: rule for rule in list_rules(session)}
    if len(rule_ids) != len(set(rule_ids)) or set(rule_ids) != set(rules):
        raise UserError("'rule_ids' names every rule once, in the new order", field="rule_ids")
    moved = False
    for number, rule_id in enumerate(rule_ids, start=1):
        if rules[rule_id].position != number:
            rules[rule_id].position = number
            moved = True
    session.flush()
    if moved:
        record_by(session, actor, "leadscore.rule.reorder", "lead score rules", {"order": list(rule_ids)})
        record(session, LeadScoreRulesChanged(None, "moved"))
    return [rules[rule_id] for rule_id in rule_ids]
