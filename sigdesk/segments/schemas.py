"""What the segments operations and the contacts list's filters take and answer (pydantic), documented
by sigdesk/openapi.py. A definition's shape is checked here (400 naming the part); what it means (a
field that exists, an op its type takes, a value of the right kind) is checked as it compiles (422
naming the condition, such as `conditions[2].value`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from sigdesk.contacts.services import ContactData
from sigdesk.lifecycle.services import MAX_NAME
from sigdesk.paging import MAX_ID
from sigdesk.schemas import Id, Input, JsonId, Paging, Query, Text
from sigdesk.segments.commands import ACTIONS, MAX_SELECTION
from sigdesk.segments.filters import FilterDefinition
from sigdesk.segments.services import MAX_SORT_CURSOR, SegmentData

Name = Annotated[Text, Field(min_length=1, max_length=MAX_NAME, description="Unique whatever its case")]
SortKey = Annotated[
    str,
    Field(
        max_length=80,
        description="name, created_at, updated_at, last_contact_at, company, city, country, stage, lead_score or "
        "field:<key>; '-' in front for descending (default -created_at)",
    ),
]


class SegmentPath(BaseModel):
    segment_id: Id = Field(description="A segment's id")


class NewSegment(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: Name
    definition: FilterDefinition


class SegmentEdit(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: Name | None = None
    definition: FilterDefinition | None = None


class SegmentList(BaseModel):
    """Every segment, by name."""

    items: list[SegmentData]


class Count(BaseModel):
    count: int = Field(description="How many contacts pass the filter now")


class ContactFilter(Query):
    """Which contacts: the search, the quick filters and a saved segment or a filter definition, all at once."""

    q: str = Field("", max_length=200, description="A name, phone number (any format), email or company")
    tag: str = Field("", max_length=MAX_NAME, description="Only contacts with this tag (by name)")
    stage: str = Field("", max_length=MAX_NAME, description="Only contacts in this stage (by name)")
    consent: Literal["opted_in", "opted_out", "unknown", ""] = Field("", description="Marketing consent")
    segment: Id | None = Field(None, description="Only contacts in this saved segment (its id)")
    filter: str = Field(
        "",
        max_length=20_000,
        description='A filter definition as JSON: {"match": "all", "conditions": [{"field", "op", "value"}]}',
    )


CURSOR_DESCRIPTION = "next_cursor of the previous page; empty for the first"


class SegmentContactsQuery(Paging, Query):
    cursor: str = Field("", max_length=MAX_SORT_CURSOR, description=CURSOR_DESCRIPTION)
    q: str = Field("", max_length=200, description="A name, phone number (any format), email or company")
    sort: SortKey = "-created_at"


class ContactPage(BaseModel):
    items: list[ContactData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


class BulkRequest(Input):
    """A bulk action on the contacts picked (`ids`) or on every contact a filter finds (`segment`, `filter`,
    `q`; none of them: every contact)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    action: Literal[ACTIONS]  # type: ignore[valid-type]
    value: JsonId | None = Field(
        None, description="The tag (tag, untag), stage (set_stage; null: none) or user (set_owner; null: nobody)"
    )
    ids: list[Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]] | None = Field(
        None, max_length=MAX_SELECTION, description="The contacts picked; leave out to act on the filter"
    )
    segment: JsonId | None = Field(None, description="Act on this saved segment's contacts")
    filter: FilterDefinition | None = Field(None, description="Act on the contacts this filter finds")
    q: str = Field("", max_length=200, description="And matching this search")
    confirm: bool = Field(False, description="Must be true to delete")


class BulkDone(BaseModel):
    action: str
    matched: int = Field(description="Contacts the selection or filter named")
    done: int = Field(description="Contacts changed")
    refused: int = Field(description="Contacts left alone (delete: they have conversations)")
