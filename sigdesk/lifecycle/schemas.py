"""What the tags and stages operations of the API take and answer (pydantic), documented by sigdesk/openapi.py.

A contact's tags are set one at a time, by id: PUT /contacts/{contact_id}/tags/{tag_id} puts a tag on,
DELETE takes it off; both are idempotent and answer the contact's tags as they are then.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from sigdesk.lifecycle.services import COLORS, MAX_NAME, StageData, StagePeriod, TagData
from sigdesk.schemas import Id, Input, JsonId, JsonWhole, Query, Text

Name = Annotated[Text, Field(min_length=1, max_length=MAX_NAME, description="Unique whatever its case")]
Color = Annotated[int, Field(ge=0, le=COLORS - 1, description="A colour of the labels' palette"), JsonWhole]
Position = Annotated[int, Field(ge=1, le=10_000, description="Where in the lifecycle, 1 first"), JsonWhole]


class TagPath(BaseModel):
    tag_id: Id = Field(description="A tag's id")


class StagePath(BaseModel):
    stage_id: Id = Field(description="A stage's id")


class ContactPath(BaseModel):
    contact_id: Id = Field(description="A contact's id")


class ContactTagPath(ContactPath):
    tag_id: Id = Field(description="A tag's id")


class NewTag(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: Name
    color: Color | None = Field(None, description="Left out: the next colour of the palette")


class TagEdit(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: Name | None = None
    color: Color | None = None


class NewStage(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: Name
    position: Position | None = Field(None, description="Left out: last")


class StageEdit(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: Name | None = None
    position: Position | None = None


class StageRemoval(Query):
    replacement_id: Id | None = Field(
        None, description="The stage its contacts move to; required when any contact is in the stage"
    )


class StageSetting(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    stage_id: JsonId | None = Field(description="The stage the contact enters; null: no stage")


class TagList(BaseModel):
    """Every tag, by name."""

    items: list[TagData]


class StageList(BaseModel):
    """Every stage, in lifecycle order."""

    items: list[StageData]


class TagRemoved(BaseModel):
    id: int
    contacts: int = Field(description="How many contacts had the tag")


class StageRemoved(BaseModel):
    id: int
    contacts: int = Field(description="How many contacts moved to the replacement stage")


class ContactTagList(BaseModel):
    contact_id: int
    changed: bool = Field(description="False when the contact already had (or lacked) the tag")
    tags: list[TagData]


class ContactStageData(BaseModel):
    contact_id: int
    changed: bool = Field(description="False when the contact already was in that stage")
    stage: StageData | None


class StageHistory(BaseModel):
    """Oldest first; the last entry is the current stage, its time counted up to now."""

    contact_id: int
    current: StageData | None
    items: list[StagePeriod]
