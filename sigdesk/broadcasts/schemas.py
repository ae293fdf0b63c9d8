"""What a broadcast is made of, declared once for the API, the pages and the CLI (pydantic v2).

The shapes are checked here; what depends on the database (the template is approved, the segment exists,
the variables name known contact fields, the pace is within the number's throughput, the time is not past)
is the commands' to judge (sigdesk.broadcasts.commands), so every entry point is refused in the same words,
naming the field as the API spells it ("template.variables.body.1", "scheduled_at").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from sigdesk.models.broadcast import RECIPIENT_STATES
from sigdesk.schemas import Id, Input, JsonId, Paging, Query, Text

NAME_MAX = 255
TEMPLATE_NAME_MAX = 255
LANGUAGE_MAX = 32
EXPRESSION_MAX = 1024
MAX_CONTACT_IDS = 100_000
MAX_VARIABLES = 50
MOMENT_TEXT_MAX = 40
MAX_RATE = 1000


def _moment(value: Any) -> datetime | None:
    """ISO 8601 with or without an offset; a naive one is the business's wall clock (the command reads the
    time zone). Only the shape is checked here."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) > MOMENT_TEXT_MAX:
        raise PydanticCustomError("datetime", "must be a date and time like 2026-01-31T09:00 or 2026-01-31T09:00Z")
    text = value.strip()
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise PydanticCustomError(
            "datetime", "must be a date and time like 2026-01-31T09:00 or 2026-01-31T09:00Z"
        ) from None


ScheduledAt = Annotated[
    datetime | None,
    PlainValidator(_moment),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "maxLength": MOMENT_TEXT_MAX},
                {"type": "null"},
            ],
            "description": "When to start (ISO 8601); without an offset it is the business's wall clock "
            "(Settings → General → time zone); null: start when asked",
        }
    ),
]

Expression = Annotated[Text, Field(max_length=EXPRESSION_MAX)]
# {"1": "{contact.name|there}"} for the body, or {"body": {"1": ...}, "header": {...}, "button_0": {...}}.
Variables = dict[
    Annotated[Text, Field(max_length=64)], Expression | dict[Annotated[Text, Field(max_length=64)], Expression]
]


class TemplateChoice(BaseModel):
    """The approved template to send and how each of its placeholders is filled per recipient."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: Annotated[Text, Field(min_length=1, max_length=TEMPLATE_NAME_MAX)]
    language: Annotated[Text, Field(min_length=1, max_length=LANGUAGE_MAX)] = Field(
        description="The template's language code as Meta lists it (en_US)"
    )
    variables: Variables = Field(
        default_factory=dict,
        max_length=MAX_VARIABLES,
        description='Placeholder -> text for the body ({"1": "{contact.name|there}"}), or per component '
        '({"body": {...}, "header": {...}, "button_0": {...}}). In the text, {contact.name}, '
        "{contact.first_name}, {contact.phone}, {contact.email}, {contact.company}, {contact.city} and "
        "{contact.fields.KEY} are filled per recipient; `|fallback` is used when the contact has no value",
    )


class Audience(BaseModel):
    """Exactly one of a saved segment, a list of contacts, or the contacts of a finished contacts import."""

    model_config = ConfigDict(strict=True, extra="forbid")

    segment_id: JsonId | None = None
    contact_ids: list[JsonId] | None = Field(None, min_length=1, max_length=MAX_CONTACT_IDS)
    import_id: JsonId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Audience":
        given = [name for name in ("segment_id", "contact_ids", "import_id") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of segment_id, contact_ids or import_id")
        return self

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.model_dump().items() if value is not None}


class BroadcastIn(Input):
    """A broadcast as created or edited: what to send, to whom, how fast and when."""

    model_config = ConfigDict(strict=True, extra="forbid")

    # An empty name and a pace out of range are the commands' to refuse, in words that name the field and
    # the number's own throughput; the document still declares the bounds.
    name: Annotated[Text, Field(max_length=NAME_MAX, json_schema_extra={"minLength": 1})]
    template: TemplateChoice
    audience: Audience
    rate_per_second: Annotated[int, Field(json_schema_extra={"minimum": 1, "maximum": MAX_RATE})] | None = Field(
        None,
        description="Messages per second, from 1 to the number's throughput (whatsapp.throughput, at most "
        f"{MAX_RATE}); null: broadcasts.default_rate",
    )
    scheduled_at: ScheduledAt = None


class TestSend(Input):
    """Send the broadcast's template once to a chosen number, filled for a chosen contact."""

    model_config = ConfigDict(strict=True, extra="forbid")

    phone: Annotated[Text, Field(min_length=1, max_length=64)] = Field(description="The number to send the test to")
    contact_id: JsonId | None = Field(
        None, description="Fill the variables as for this contact (default: the contact with that number)"
    )


RecipientState = Annotated[
    str | None,
    PlainValidator(lambda value: _state(value)),
    WithJsonSchema({"anyOf": [{"type": "string", "enum": [*RECIPIENT_STATES, ""]}, {"type": "null"}]}),
]


def _state(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if value not in RECIPIENT_STATES:
        raise PydanticCustomError("state", "must be one of {states}", {"states": ", ".join(RECIPIENT_STATES)})
    return value


class RecipientSearch(Paging, Query):
    state: RecipientState = Field(None, description="Only recipients in this state; empty: all")


class BroadcastPath(BaseModel):
    broadcast_id: Id = Field(description="A broadcast's id")
