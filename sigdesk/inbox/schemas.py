"""What the inbox page's calls take and answer, declared once (pydantic v2): `ui_call()` checks the
inputs on the way in and the JSON answers on the way out, and documents both at /inbox/openapi.json.

These are SigDesk's own page's calls, not the public API: they are kept out of /api/v1/openapi.json.
The rules of the business (a note needs text, a snooze lies ahead, a shortcut is free) stay with the
commands; these models only refuse input of the wrong shape, naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from sigdesk.errors import UserError
from sigdesk.inbox.services import STATUSES, VIEWS, Filters
from sigdesk.models import MessageStatus
from sigdesk.paging import MAX_CURSOR, MAX_ID, Cursor
from sigdesk.schemas import Id, Input, JsonId, JsonList, JsonObject, Query, Text, UploadedFile

TEXT_MAX = 4096
WAMID_MAX = 255
EMOJI_MAX = 16
SEARCH_MAX = 100

ReplyTo = Annotated[str, Field(min_length=1, max_length=WAMID_MAX, description="wamid of the message to quote")]


def _position(value: Any) -> Cursor:
    if isinstance(value, str):
        try:
            return Cursor.decode(value)
        except UserError:
            pass
    raise PydanticCustomError("cursor", "is not a list position SigDesk gave out")


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 date and time with its zone; numbers are refused (is 1700000000 seconds or ms?)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                raise PydanticCustomError("timezone", "needs a time zone (for example a trailing Z)")
            return when
    raise PydanticCustomError("datetime", "must be a date and time like 2030-01-31T09:00:00Z")


def _written(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "Write a message first")
    return value


def _assignee(value: Any) -> int | str | None:
    if value is None or value == "me":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    raise PydanticCustomError("assignee", 'must be a team member\'s id, "me" or null')


Assignee = Annotated[
    int | Literal["me"] | None,
    PlainValidator(_assignee),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_ID}, {"const": "me"}, {"type": "null"}]}
    ),
]
Position = Annotated[
    Cursor,
    PlainValidator(_position),
    WithJsonSchema({"type": "string", "maxLength": MAX_CURSOR, "description": "A list position SigDesk gave out"}),
]
Moment = Annotated[
    datetime | None,
    BeforeValidator(_moment),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}),
]


# --- paths -------------------------------------------------------------------------------------


class ConversationPath(BaseModel):
    conversation_id: Id


class MessagePath(ConversationPath):
    message_id: Id


class NotePath(ConversationPath):
    note_id: Id


class CannedPath(BaseModel):
    canned_id: Id


class LabelPath(BaseModel):
    label_id: Id


# --- query strings -----------------------------------------------------------------------------


class ListQuery(Query):
    """The conversation list's filters, and where the previous page ended."""

    view: Literal[VIEWS] = "all"  # type: ignore[valid-type]
    status: Literal[(*STATUSES, "any")] = "open"  # type: ignore[valid-type]
    label: Id | None = Field(None, description="Only conversations with this label")
    unread: bool = False
    before: Position | None = Field(None, description="next_cursor of the previous page")

    def filters(self) -> Filters:
        return Filters(self.view, self.status, self.label, self.unread)


class PageQuery(ListQuery):
    """The inbox page: the list's filters, the open conversation and the message to jump to."""

    c: Id | None = Field(None, description="The conversation to open")
    m: Id | None = Field(None, description="The message to show in it")


class ThreadQuery(Query):
    around: Id | None = Field(None, description="Centre the page on this message")


class MoreQuery(Query):
    before: Id | None = Field(None, description="Messages older than this one")
    after: Id | None = Field(None, description="Messages newer than this one")


class CannedQuery(Query):
    q: Text = Field("", max_length=SEARCH_MAX, description="A shortcut's beginning")


# --- bodies ------------------------------------------------------------------------------------


class SendText(Input):
    text: Annotated[Text, Field(max_length=TEXT_MAX), AfterValidator(_written)] = Field("", validate_default=True)
    reply_to: ReplyTo | None = None


class React(Input):
    message_id: JsonId
    emoji: str = Field(max_length=EMOJI_MAX, description="Empty takes the reaction back")


class SendTemplate(Input):
    template_id: JsonId
    params: dict[str, JsonList | JsonObject] | None = Field(
        None, description='Values per component, in order or by name: {"body": [...], "header": [...]}'
    )


class Attachment(BaseModel):
    file: UploadedFile
    caption: Text = ""
    reply_to: ReplyTo | None = None


class AddNote(Input):
    body: Text = ""


class Assign(Input):
    assignee_id: Assignee = Field(description='A team member\'s id, "me", or null for nobody')


class SetStatus(Input):
    status: Literal[STATUSES]  # type: ignore[valid-type]
    snoozed_until: Moment = None


class SetLabel(Input):
    label_id: JsonId
    on: bool


# --- settings: a JSON object from the page's script, or the settings page's form post ---------------


class CannedFields(BaseModel):
    shortcut: Text = ""
    body: Text = ""


class LabelFields(BaseModel):
    name: Text = ""


class VisibilityFields(BaseModel):
    agents_see_all: bool = Field(False, alias="inbox.agents_see_all")


# --- answers -----------------------------------------------------------------------------------

FORM_POSTED = {302: "The settings page's form post: back to the settings page, with the message as a notice"}


class Queued(BaseModel):
    """A message accepted for sending: the worker sends it, the thread follows its status."""

    message_id: int
    status: MessageStatus


class PanelContact(Input):
    """The side panel's quick edit of the conversation's contact: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text | None, Field(max_length=255)] = None
    email: Annotated[Text | None, Field(max_length=254)] = None
    company: Annotated[Text | None, Field(max_length=255)] = None
    stage: Annotated[Text | None, Field(max_length=64, description='A stage\'s name; null or "": none')] = None
    tags: list[Annotated[Text, Field(max_length=64)]] | None = Field(
        None, max_length=200, description="Exactly the contact's tags (names); left out: unchanged"
    )


class ContactSaved(BaseModel):
    contact_id: int


class MarkedRead(BaseModel):
    id: int
    unread_count: int


class NoteAdded(BaseModel):
    note_id: int


class Assigned(BaseModel):
    id: int
    assignee_id: int | None = Field(description="The team member now on it; null for nobody")


class StatusSet(BaseModel):
    id: int
    status: Literal[STATUSES]  # type: ignore[valid-type]
    snoozed_until: datetime | None


class LabelSet(BaseModel):
    id: int
    label_id: int
    on: bool


class Canned(BaseModel):
    id: int
    shortcut: str
    body: str


class CannedList(BaseModel):
    canned: list[Canned]


class Done(BaseModel):
    """A settings change made: what to tell the admin."""

    message: str


class CannedSaved(Done):
    id: int
    shortcut: str


class LabelAdded(Done):
    id: int
    name: str


class VisibilitySaved(Done):
    agents_see_all: bool
