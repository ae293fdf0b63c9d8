"""What the lead score operations of the API take and answer (pydantic), documented by sigdesk/openapi.py.

Points are declared as whole numbers and checked by the command (-100 to 100), so a rule out of range is
a 422 naming `points`, as an unknown tag, stage or field is a 422 naming `argument`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from sigdesk.lead_score.services import KIND_NAMES, MAX_LABEL, MAX_POINTS, MIN_POINTS, LeadReason, RuleData
from sigdesk.schemas import Id, Input, JsonWhole, Text

Kind = Literal[KIND_NAMES]  # type: ignore[valid-type]
Points = Annotated[int, Field(description=f"What a match adds, {MIN_POINTS} to {MAX_POINTS}"), JsonWhole]
Argument = Annotated[
    Text | None,
    Field(
        max_length=255,
        description="has_tag: a tag's name; in_stage: a stage's name; field_set: a custom field's key; "
        "field_equals: key=value; recent_inbound: a number of days; the other kinds take none",
    ),
]
Label = Annotated[
    Text | None, Field(max_length=MAX_LABEL, description="The short 'why'; left out: what the rule checks")
]
Position = Annotated[int, Field(ge=1, le=10_000, description="Where the rule comes, 1 first"), JsonWhole]


class RulePath(BaseModel):
    rule_id: Id = Field(description="A lead score rule's id")


class ContactPath(BaseModel):
    contact_id: Id = Field(description="A contact's id")


class NewRule(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    kind: Kind
    points: Points
    argument: Argument = None
    label: Label = None
    position: Position | None = Field(None, description="Left out: last")


class RuleEdit(Input):
    """Only what is given changes; the kind stays."""

    model_config = ConfigDict(strict=True, extra="forbid")
    points: Points | None = None
    argument: Argument = None
    label: Label = None
    position: Position | None = None


class RuleList(BaseModel):
    """Every rule, in order (the order of the reasons)."""

    items: list[RuleData]


class RuleRemoved(BaseModel):
    id: int


__all__ = ["ContactPath", "LeadReason", "NewRule", "RuleEdit", "RuleList", "RulePath", "RuleRemoved"]
