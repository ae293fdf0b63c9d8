"""Who sees which conversations, and conversations and messages as plain data for the API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from sigdesk.auth.roles import can
from sigdesk.db import utcnow
from sigdesk.models import Contact, Conversation, Message, Reaction, User
from sigdesk.settings import services as settings

SERVICE_WINDOW = timedelta(hours=24)
MAX_PAGE = 200


AGENTS_SEE_ALL = "inbox.agents_see_all"


def agents_see_all(session: Session) -> bool:
    """The setting that widens what agents see to every conversation (a plain setting: no cipher needed)."""
    return bool(settings.get(session, None, AGENTS_SEE_ALL))  # type: ignore[arg-type]


def sees_all(user: User, widened: bool = False) -> bool:
    """`widened` is agents_see_all(session): pass it wherever a session is at hand."""
    return widened or can(user.role, "conversations.view_all")


def may_see(user: User, assignee_id: int | None, widened: bool = False) -> bool:
    """The visibility rule for one conversation, for code that has no query (live events); visible() is the same rule."""
    return sees_all(user, widened) or assignee_id is None or assignee_id == user.id


def visible(user: User, widened: bool = False) -> Select:
    """Agents see their own and unassigned conversations (all of them when the setting widens it); admins and owners see all."""
    query = select(Conversation)
    if not sees_all(user, widened):
        query = query.where(or_(Conversation.assignee_id == user.id, Conversation.assignee_id.is_(None)))
    return query


def get_visible(session: Session, user: User, conversation_id: int) -> Conversation | None:
    return session.scalar(visible(user, agents_see_all(session)).where(Conversation.id == conversation_id))


def window_closes_at(conversation: Conversation) -> datetime | None:
    """The customer-service window: free-form messages only until 24 h after their last message."""
    if conversation.last_inbound_at is None:
        return None
    return conversation.last_inbound_at + SERVICE_WINDOW


def window_open(conversation: Conversation, now: datetime | None = None) -> bool:
    closes = window_closes_at(conversation)
    return closes is not None and (now or utcnow()) < closes


def list_conversations(session: Session, user: User, limit: int = 50, before_id: int | None = None) -> list[tuple[Conversation, Contact]]:
    query = (
        visible(user, agents_see_all(session))
        .join(Contact, Contact.id == Conversation.contact_id)
        .add_columns(Contact)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(min(max(limit, 1), MAX_PAGE))
    )
    if before_id is not None:
        query = query.where(Conversation.id < before_id)
    return [(row[0], row[1]) for row in session.execute(query)]


def list_messages(session: Session, conversation: Conversation, limit: int = 50, before_id: int | None = None) -> list[Message]:
    """Newest first, so a thread opens at its latest messages and pages back in time."""
    query = select(Message).where(Message.conversation_id == conversation.id)
    if before_id is not None:
        query = query.where(Message.id < before_id)
    query = query.order_by(Message.timestamp.desc(), Message.id.desc()).limit(min(max(limit, 1), MAX_PAGE))
    return list(session.scalars(query))


def reactions_for(session: Session, wamids: list[str]) -> dict[str, list[str]]:
    if not wamids:
        return {}
    found: dict[str, list[str]] = {}
    rows = session.execute(select(Reaction.target_wamid, Reaction.emoji).where(Reaction.target_wamid.in_(wamids), Reaction.emoji.is_not(None)))
    for target, emoji in rows:
        found.setdefault(target, []).append(emoji)
    return found


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def conversation_data(conversation: Conversation, contact: Contact) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "status": conversation.status,
        "assignee_id": conversation.assignee_id,
        "unread_count": conversation.unread_count,
        "last_message_at": _iso(conversation.last_message_at),
        "window_closes_at": _iso(window_closes_at(conversation)),
        "window_open": window_open(conversation),
        "contact": {"id": contact.id, "name": contact.name, "wa_id": contact.wa_id, "user_id": contact.user_id,
                    "opted_out_marketing": contact.opted_out_marketing},
    }


def message_data(message: Message, reactions: list[str] | None = None) -> dict[str, Any]:
    revoked = message.revoked_at is not None
    return {
        "id": message.id,
        "wamid": message.wamid,
        "direction": message.direction,
        "type": message.type,
        "text": None if revoked else message.text,
        "caption": None if revoked else message.caption,
        "media": None if not message.media_id and not message.storage_key else {
            "mime_type": message.mime_type, "filename": message.filename, "size": message.file_size,
            "state": message.media_state, "url": f"/media/{message.id}" if message.storage_key else None,
        },
        "details": None if revoked or not message.details else json.loads(message.details),
        "reply_to_wamid": message.reply_to_wamid,
        "forwarded": message.forwarded,
        "status": message.status,
        "error": None if message.error_code is None and not message.error_explanation else {
            "code": message.error_code, "title": message.error_title, "explanation": message.error_explanation,
        },
        "reactions": reactions or [],
        "timestamp": _iso(message.timestamp),
        "edited_at": _iso(message.edited_at),
        "revoked_at": _iso(message.revoked_at),
    }
