"""The lead score: what each rule kind means, the rules as everyone reads them, and a contact's score with
the reasons that make it up.

A contact's score is clamp(sum of the points of the rules it matches, 0, 100), kept on the contact with
its reasons (sigdesk.lead_score.scoring recomputes them in SQL, in the worker). The reasons are a list
of {label, points, source}: today every reason comes from a rule (`source` "rule", with its `rule_id`);
an estimate by the AI can join the same list later as one more reason with its own source, so readers
(the API, the inbox panel) need no change to show it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.custom_fields import services as custom_fields
from sigdesk.custom_fields.values import parse, to_json
from sigdesk.errors import NotFound, Refused, UserError
from sigdesk.lifecycle.services import find_stage, find_tag, get_contact_id
from sigdesk.models import Contact, LeadScoreRule

MIN_POINTS, MAX_POINTS = -100, 100
MAX_SCORE = 100
MAX_LABEL = 64
MAX_DAYS = 3650


@dataclass(frozen=True)
class Kind:
    """A kind of rule: what it looks at, what its argument is (None: it takes none), and a note for the page."""

    title: str
    argument: Literal["tag", "stage", "field", "field_value", "days"] | None = None
    note: str = ""
    reads_messages: bool = False  # its answer changes with the messages a contact sends or gets


KINDS: dict[str, Kind] = {
    "opted_in": Kind("Opted in to marketing"),
    "replied_within_day": Kind(
        "Replied within a day",
        note="The customer once answered a message of the business within 24 hours",
        reads_messages=True,
    ),
    "has_tag": Kind("Has the tag", "tag"),
    "in_stage": Kind("Is in the lifecycle stage", "stage"),
    "field_set": Kind("Custom field has a value", "field"),
    "field_equals": Kind("Custom field equals", "field_value", note="Argument: key=value"),
    "recent_inbound": Kind("Wrote within N days", "days", reads_messages=True),
    "has_ordered": Kind("Has ordered", note="Counts once orders exist"),
}
KIND_NAMES = tuple(KINDS)


class LeadReason(BaseModel):
    """One part of a lead score: what it says, what it added (or took away), and where it came from."""

    label: str = Field(description="The short 'why', e.g. Opted in")
    points: int
    source: str = Field("rule", description="rule (an admin's rule); later also ai (the AI's estimate)")
    rule_id: int | None = Field(None, description="The rule that gave it (source rule)")


class LeadScore(BaseModel):
    """A contact's lead score, 0 to 100 (null: not scored yet), and the reasons that make it up."""

    contact_id: int
    score: int | None = Field(description="0 to 100; null: not scored yet")
    why: str = Field(description="The reasons in a few words, e.g. 'Opted in +10, Tag VIP +20'")
    reasons: list[LeadReason]


def read_reasons(text: str | None) -> list[LeadReason]:
    """The stored reasons (contacts.lead_score_reasons); empty for none or for text that does not parse."""
    if not text:
        return []
    try:
        items = json.loads(text)
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [LeadReason.model_validate(item) for item in items if isinstance(item, dict) and "label" in item]


def why(reasons: Sequence[LeadReason]) -> str:
    """The short 'why' shown next to the number: each reason with its points."""
    return ", ".join(f"{reason.label} {reason.points:+d}" for reason in reasons)


def score_of(session: Session, contact_id: int) -> LeadScore:
    get_contact_id(session, contact_id)
    row = session.execute(select(Contact.lead_score, Contact.lead_score_reasons).where(Contact.id == contact_id)).one()
    reasons = read_reasons(row.lead_score_reasons)
    return LeadScore(contact_id=contact_id, score=row.lead_score, why=why(reasons), reasons=reasons)


# --- the rules ------------------------------------------------------------------------------------


class RuleData(BaseModel):
    id: int
    kind: str = Field(description=", ".join(KIND_NAMES))
    argument: str | None = Field(
        description="has_tag: a tag's name; in_stage: a stage's name; field_set: a custom field's key; "
        "field_equals: key=value; recent_inbound: a number of days; the other kinds take none"
    )
    points: int = Field(description=f"What a match adds, {MIN_POINTS} to {MAX_POINTS}")
    label: str = Field(description="The short 'why' shown with the score")
    position: int = Field(description="Where the rule and its reason come, 1 first")
    note: str = Field("", description="Why the rule matches nobody, or how it counts")

    @classmethod
    def of(cls, rule: LeadScoreRule, note: str = "") -> "RuleData":
        return cls(
            id=rule.id,
            kind=rule.kind,
            argument=rule.argument,
            points=rule.points,
            label=rule.label,
            position=rule.position,
            note=note or KINDS[rule.kind].note if rule.kind in KINDS else note,
        )


def list_rules(session: Session) -> list[LeadScoreRule]:
    return list(session.scalars(select(LeadScoreRule).order_by(LeadScoreRule.position, LeadScoreRule.id)))


def get_rule(session: Session, rule_id: int, field: str = "rule_id") -> LeadScoreRule:
    rule = session.get(LeadScoreRule, rule_id)
    if rule is None:
        raise NotFound(f"There is no lead score rule {rule_id}", field=field)
    return rule


def broken(session: Session, rule: LeadScoreRule) -> str:
    """Why a stored rule matches nobody any more (its tag, stage or field is gone); empty when it is fine."""
    spec = KINDS.get(rule.kind)
    if spec is None:
        return "Unknown kind"
    try:
        clean_argument(session, rule.kind, rule.argument)
    except UserError as refused:
        return f"Matches nobody: {refused}"
    return ""


def rules_using_field(session: Session, key: str) -> list[str]:
    """The rules that read a custom field, named for the field's delete confirmation."""
    return [
        f"Lead score rule '{rule.label}'"
        for rule in list_rules(session)
        if rule.kind in ("field_set", "field_equals") and (rule.argument or "").split("=", 1)[0] == key
    ]


# --- what a rule may say (shared by the commands and the pages) -------------------------------------------


def clean_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise UserError(f"'kind' is one of: {', '.join(KIND_NAMES)}", field="kind")
    return kind


def clean_points(points: object) -> int:
    if not isinstance(points, int) or isinstance(points, bool) or not MIN_POINTS <= points <= MAX_POINTS:
        raise Refused(f"'points' is a whole number from {MIN_POINTS} to {MAX_POINTS}", field="points")
    return points


def clean_label(label: object, default: str) -> str:
    if label is None or (isinstance(label, str) and not label.strip()):
        label = default
    if not isinstance(label, str):
        raise UserError("'label' is text", field="label")
    label = label.strip()[:MAX_LABEL] if label is default else label.strip()
    if len(label) > MAX_LABEL:
        raise UserError(f"A label is 1 to {MAX_LABEL} characters", field="label")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") for char in label):
        raise Refused("A label is one line of visible text", field="label")
    return label


def _field(session: Session, key: str) -> custom_fields.FieldDefinition:
    row = custom_fields.find_field(session, key.strip()) if key.strip() else None
    if row is None:
        raise Refused(
            f"There is no custom field '{key[:64]}' (admins add fields in Settings → Contact fields)",
            field="argument",
        )
    return custom_fields.FieldDefinition.of(row)


def field_value(session: Session, argument: str) -> tuple[custom_fields.FieldDefinition, object]:
    """A field_equals argument read as (the field, its value as a JSON value of the field's kind)."""
    key, equals, text = argument.partition("=")
    definition = _field(session, key)
    if not equals or not text.strip():
        raise Refused("Write the field and the value as key=value", field="argument")
    loose = definition.model_copy(
        update={"pattern": None, "kind": "choice" if definition.kind == "choices" else definition.kind}
    )
    try:
        stored = parse(loose, text.strip(), from_text=True)
    except UserError as refused:
        raise Refused(str(refused), field="argument") from refused
    return definition, to_json(loose, *stored)


def clean_argument(session: Session, kind: str, argument: object) -> str | None:
    """The argument as stored: a tag or stage by its stored name, a field key, key=value, or days."""
    need = KINDS[kind].argument
    if need is None:
        return None
    if not isinstance(argument, str) or not argument.strip():
        raise Refused(f"A '{kind}' rule needs an argument ({need.replace('_', ' ')})", field="argument")
    argument = argument.strip()
    if len(argument) > 255:
        raise Refused("'argument' is at most 255 characters", field="argument")
    if need == "tag":
        tag = find_tag(session, argument)
        if tag is None:
            raise Refused(f"There is no tag '{argument[:64]}' (admins add tags in Settings → Tags)", field="argument")
        return tag.name
    if need == "stage":
        stage = find_stage(session, argument)
        if stage is None:
            raise Refused(f"There is no stage '{argument[:64]}' (see Settings → Stages)", field="argument")
        return stage.name
    if need == "field":
        return _field(session, argument).key
    if need == "field_value":
        definition, _ = field_value(session, argument)
        return f"{definition.key}={argument.partition('=')[2].strip()}"
    if not (argument.isascii() and argument.isdigit()) or not 1 <= int(argument) <= MAX_DAYS:
        raise Refused(f"'argument' is a number of days from 1 to {MAX_DAYS}", field="argument")
    return str(int(argument))


def default_label(kind: str, argument: str | None) -> str:
    """What a rule says when the admin gave no label."""
    if kind == "has_tag":
        return f"Tag {argument}"
    if kind == "in_stage":
        return f"Stage {argument}"
    if kind == "field_set":
        return f"Has {argument}"
    if kind == "field_equals":
        return str(argument).replace("=", " = ", 1)
    if kind == "recent_inbound":
        return f"Wrote within {argument} day{'s' if argument != '1' else ''}"
    return {"opted_in": "Opted in", "replied_within_day": "Replies within a day"}.get(kind, KINDS[kind].title)
