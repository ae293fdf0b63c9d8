"""What the API's operations take and answer, declared once (pydantic v2); sigdesk/openapi.py documents them.

Answers reuse each domain's serializer (conversations, templates, search, auth); this module adds
the requests, the pages and the small answers that only the API gives.
"""

from __future__ import annotations

from typing import Union, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag, create_model

from sigdesk.openapi import TAGS
from sigdesk.auth.schemas import MeData
from sigdesk.conversations.schemas import ConversationData, MessageData
from sigdesk.message_templates.schemas import TemplateData
from sigdesk.schemas import Id, Input, JsonList, JsonObject, UploadedFile
from sigdesk.search.schemas import SearchResults
from sigdesk.whatsapp.media import LIMITS

__all__ = ["MeData", "SearchResults"]

TEXT_MAX = 4096
WAMID_MAX = 255
OBJECT_KINDS = ("image", "video", "audio", "document", "sticker", "interactive", "reaction", "location")


# --- paths and queries ---------------------------------------------------------------------------


class ConversationPath(BaseModel):
    conversation_id: Id = Field(description="A conversation's id")


class MessagePath(ConversationPath):
    message_id: Id = Field(description="A message's id in that conversation")


# --- pages ---------------------------------------------------------------------------------------


class ConversationPage(BaseModel):
    """Latest activity first."""

    items: list[ConversationData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


class MessagePage(BaseModel):
    """Newest first."""

    items: list[MessageData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


class TemplatePage(BaseModel):
    """Newest first by when SigDesk first synced them."""

    items: list[TemplateData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


# --- sending -------------------------------------------------------------------------------------

ReplyTo = Annotated[str, Field(min_length=1, max_length=WAMID_MAX, description="wamid of the message to quote")]


class TextMessage(Input):
    type: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    preview_url: bool = False
    reply_to: ReplyTo | None = None


class TemplateLanguage(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    code: str = Field(min_length=1, max_length=32)


class TemplateContent(Input):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    language: TemplateLanguage
    components: list[JsonObject] = []


class TemplateMessage(Input):
    type: Literal["template"]
    template: TemplateContent
    reply_to: ReplyTo | None = None


class ContactsMessage(Input):
    type: Literal["contacts"]
    contacts: Annotated[JsonList, Field(min_length=1, description="Contact cards, shaped as in Meta's Cloud API")]
    reply_to: ReplyTo | None = None


def _object_message(kind: str) -> type[Input]:
    return create_model(  # type: ignore[call-overload]
        f"{kind.title()}Message",
        __base__=Input,
        type=(Literal[kind], ...),
        **{kind: (JsonObject, Field(description=f"The {kind} object, shaped as in Meta's Cloud API"))},
        reply_to=(ReplyTo | None, None),
    )


def _kind(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    kind = body.get("type", "text")
    return kind if isinstance(kind, str) else None


KINDS: dict[str, type[Input]] = {
    "text": TextMessage,
    **{kind: _object_message(kind) for kind in OBJECT_KINDS},
    "contacts": ContactsMessage,
    "template": TemplateMessage,
}
TAGS.update(KINDS)


class SendMessage(RootModel):
    """Either 'text' (type may be left out), or 'type' plus an object named after it, shaped as in Meta's Cloud API."""

    root: Annotated[
        Union[tuple(Annotated[model, Tag(kind)] for kind, model in KINDS.items())],  # type: ignore[misc]  # noqa: UP007
        Discriminator(
            _kind,
            custom_error_type="union_tag_message_type",
            custom_error_message=f"Give 'text', or a 'type' (one of {', '.join(KINDS)}) and an object of that name",
        ),
    ]

    def content(self) -> tuple[str, dict[str, Any], str | None]:
        """(type, the type's object, reply_to) as outbound.queue takes them."""
        body = self.root
        if isinstance(body, TextMessage):
            return "text", {"body": body.text, "preview_url": body.preview_url}, body.reply_to
        if isinstance(body, ContactsMessage):
            return "contacts", {"contacts": body.contacts}, body.reply_to
        if isinstance(body, TemplateMessage):
            return "template", body.template.model_dump(exclude_unset=True), body.reply_to
        return body.type, getattr(body, body.type), body.reply_to  # type: ignore[attr-defined]


class MarkedRead(BaseModel):
    id: int
    unread_count: int
    receipt_queued: bool = Field(description="Whether a read receipt goes to the customer (a business setting)")


# --- media ---------------------------------------------------------------------------------------


class MediaUpload(BaseModel):
    file: UploadedFile
    type: Literal[tuple(LIMITS)]  # type: ignore[valid-type]


class MediaUploaded(BaseModel):
    id: str = Field(description="Meta's media id: give it as the id of a media message's object")
    mime_type: str | None
    size: int
