"""Conversations and messages as the API (and exports) show them: the one serializer of each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row

from pydantic import BaseModel, Field

from sigdesk.contacts.services import ContactData
from sigdesk.conversations.services import window_closes_at, window_open
from sigdesk.db import read_json
from sigdesk.models import Contact, Conversation, ConversationStatus, Direction, Message, MessageStatus


class ConversationData(BaseModel):
    id: int
    status: ConversationStatus
    assignee_id: int | None
    unread_count: int
    last_message_at: datetime | None
    window_closes_at: datetime | None
    window_open: bool
    last_inbound_at: datetime | None = Field(description="When the customer last wrote")
    created_at: datetime | None
    contact: ContactData

    @classmethod
    def of(cls, conversation: Conversation, contact: Contact) -> "ConversationData":
        return cls(
            id=conversation.id,
            status=conversation.status,
            assignee_id=conversation.assignee_id,
            unread_count=conversation.unread_count,
            last_message_at=conversation.last_message_at,
            window_closes_at=window_closes_at(conversation),
            window_open=window_open(conversation),
            last_inbound_at=conversation.last_inbound_at,
            created_at=conversation.created_at,
            contact=ContactData.of(contact),
        )


class MediaData(BaseModel):
    mime_type: str | None
    filename: str | None
    size: int | None
    state: str | None
    url: str | None = Field(description="Where SigDesk serves the downloaded file (browser session)")


class MessageErrorData(BaseModel):
    code: int | None
    title: str | None
    explanation: str | None


# The columns MessageData is read from: a query that selects them (exports, search) gives rows that of() takes
# as it takes a Message, without loading whole messages (their Meta payloads) as objects.
MESSAGE_COLUMNS = (
    Message.id,
    Message.conversation_id,
    Message.contact_id,
    Message.wamid,
    Message.direction,
    Message.type,
    Message.text,
    Message.caption,
    Message.media_id,
    Message.storage_key,
    Message.mime_type,
    Message.filename,
    Message.file_size,
    Message.media_state,
    Message.details,
    Message.reply_to_wamid,
    Message.forwarded,
    Message.status,
    Message.error_code,
    Message.error_title,
    Message.error_explanation,
    Message.timestamp,
    Message.edited_at,
    Message.revoked_at,
)


class MessageData(BaseModel):
    id: int
    conversation_id: int
    contact_id: int
    wamid: str | None
    direction: Direction
    type: str
    text: str | None
    caption: str | None
    media: MediaData | None
    details: Any = Field(description="The message's type object as Meta sent or SigDesk queued it; null once revoked")
    reply_to_wamid: str | None
    forwarded: bool
    status: MessageStatus | None
    error: MessageErrorData | None
    reactions: list[str]
    timestamp: datetime | None
    edited_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, message: Message | Row, reactions: list[str] | None = None) -> "MessageData":
        """From a Message or a row that selected MESSAGE_COLUMNS."""
        revoked = message.revoked_at is not None
        return cls(
            id=message.id,
            conversation_id=message.conversation_id,
            contact_id=message.contact_id,
            wamid=message.wamid,
            direction=message.direction,
            type=message.type,
            text=None if revoked else message.text,
            caption=None if revoked else message.caption,
            media=None
            if not message.media_id and not message.storage_key
            else MediaData(
                mime_type=message.mime_type,
                filename=message.filename,
                size=message.file_size,
                state=message.media_state,
                url=f"/media/{message.id}" if message.storage_key else None,
            ),
            details=None if revoked else read_json(message.details, None, "messages.details"),
            reply_to_wamid=message.reply_to_wamid,
            forwarded=bool(message.forwarded),
            status=message.status,
            error=None
            if message.error_code is None and not message.error_explanation
            else MessageErrorData(
                code=message.error_code, title=message.error_title, explanation=message.error_explanation
            ),
            reactions=reactions or [],
            timestamp=message.timestamp,
            edited_at=message.edited_at,
            revoked_at=message.revoked_at,
        )
