"""What the duplicates and merge operations of the API take and answer (pydantic), documented by sigdesk/openapi.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from sigdesk.contacts.services import ContactData
from sigdesk.merge.services import DuplicatePair, MergeMoves, MergeRecord
from sigdesk.schemas import Id, Input, JsonId, Paging, Query, Text

PickName = Annotated[Text, Field(min_length=1, max_length=80)]


class ContactPath(BaseModel):
    contact_id: Id = Field(description="A contact's id")


class DuplicatesQuery(Paging):
    """?cursor=&limit= as every list takes them."""


class DuplicatePage(BaseModel):
    """Pairs sharing an email or a phone number first, then pairs with the same name; dismissed pairs left out."""

    items: list[DuplicatePair]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")
    partial: bool = Field(description="True when there were too many contacts to compare them all")


class Dismissal(Input):
    """Two contacts that are not duplicates: they stop being suggested."""

    model_config = ConfigDict(strict=True, extra="forbid")
    first_id: JsonId
    second_id: JsonId


class Dismissed(BaseModel):
    first_id: int
    second_id: int
    changed: bool = Field(description="False when the pair had been dismissed already")


class PreviewQuery(Query):
    other: Id = Field(description="The contact that would be merged into this one (and deleted)")


class MergeRequest(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    merge_id: JsonId = Field(description="The contact merged into this one and then deleted")
    picks: dict[PickName, Literal["keep", "merge"]] = Field(
        default_factory=dict,
        max_length=500,
        description="Whose value wins, by field (as the preview names them: 'email', 'stage', 'custom.<key>'); "
        "a field left out takes the preview's default",
    )


class MergeDone(BaseModel):
    kept_id: int
    merged_id: int
    merge_id: int = Field(description="The record of this merge (GET /contacts/{id}/merges)")
    picks: dict[str, Literal["keep", "merge"]] = Field(description="Whose value won, by field")
    fields: list[str] = Field(description="The kept contact's fields that changed")
    moved: MergeMoves
    contact: ContactData = Field(description="The kept contact as it is now")


class MergeList(BaseModel):
    contact_id: int
    items: list[MergeRecord] = Field(description="Newest first")
