"""What the contact-fields operations of the API take and answer (pydantic), documented by sigdesk/openapi.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from sigdesk.custom_fields.services import (
    MAX_KEY,
    MAX_LABEL,
    MAX_OPTION,
    MAX_OPTIONS,
    MAX_PATTERN,
    FieldDefinition,
)
from sigdesk.schemas import Id, Input, JsonWhole, Text

Kind = Literal["text", "number", "currency", "date", "boolean", "choice", "choices", "link"]
Label = Annotated[Text, Field(min_length=1, max_length=MAX_LABEL, description="What people read")]
Key = Annotated[
    Text,
    Field(
        min_length=1,
        max_length=MAX_KEY,
        description="Lower-case letters, digits and _, starting with a letter; unique. Left out: made of the label",
    ),
]
Pattern = Annotated[
    Text,
    Field(max_length=MAX_PATTERN, description="A regular expression text and link values must match in full"),
]
Option = Annotated[Text, Field(min_length=1, max_length=MAX_OPTION)]
Options = Annotated[
    list[Option], Field(max_length=MAX_OPTIONS, description="The choices of a choice or choices field, in order")
]
Currency = Annotated[Text, Field(min_length=3, max_length=3, description="ISO 4217 code, such as EUR")]
Position = Annotated[int, Field(ge=1, le=10_000, description="Where among the fields, 1 first"), JsonWhole]


class FieldPath(BaseModel):
    field_id: Id = Field(description="A contact field's id")


class NewField(Input):
    model_config = ConfigDict(strict=True, extra="forbid")

    label: Label
    kind: Kind
    key: Key | None = None
    required: bool = False
    pattern: Pattern | None = None
    options: Options | None = None
    currency: Currency | None = None
    position: Position | None = Field(None, description="Left out: last")


class FieldEdit(Input):
    """Only the parts given change. `key` and `kind` change only while no contact has a value (else 409)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    label: Label | None = None
    key: Key | None = None
    kind: Kind | None = None
    required: bool | None = None
    pattern: Pattern | None = Field(None, description='null or "": no pattern')
    options: Options | None = None
    currency: Currency | None = None
    position: Position | None = None


class FieldList(BaseModel):
    """Every contact field, in the admins' order."""

    items: list[FieldDefinition]


class FieldRemoved(BaseModel):
    id: int
    values: int = Field(description="How many contacts had a value, now gone")
