"""Search hits as the search box and the API show them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from sigdesk.contacts.services import ContactData
from sigdesk.conversations.schemas import MessageData


class MessageHit(BaseModel):
    message_id: int
    conversation_id: int
    contact_name: str
    snippet_html: str = Field(description="HTML-escaped, with the matched words in <mark>")
    timestamp: datetime | None
    message: MessageData = Field(description="The message as the API shows it everywhere")


class ContactHit(BaseModel):
    contact_id: int
    conversation_id: int
    name: str
    wa_id: str | None
    contact: ContactData = Field(description="The contact as the API shows it everywhere")


class SearchResults(BaseModel):
    query: str
    messages: list[MessageHit]
    contacts: list[ContactHit]
