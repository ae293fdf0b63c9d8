"""Every change to a conversation, one function each: the inbox page, the API and the worker all call these.

A command finds the conversation as the actor may see it, validates, writes, records the audit entry
and the activity note, and records its domain event; the caller commits (the event is published and
the worker woken only then; see sigdesk.events.outbox). Network calls never happen here: sending and
read receipts are the worker's, started by the events.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.conversations import actions
from sigdesk.conversations.services import get_visible
from sigdesk.db import write_lock
from sigdesk.errors import NotFound, UserError
from sigdesk.events.catalogue import (
    ConversationAssigned,
    ConversationLabelled,
    ConversationRead,
    ConversationStatusChanged,
    MessageQueued,
    MessageRetried,
    NoteAdded,
)
from sigdesk.events.outbox import record
from sigdesk.general import clock
from sigdesk.labels import services as labels
from sigdesk.message_templates import services as templates
from sigdesk.models import Conversation, MediaState, Message, Note, User
from sigdesk.outbound import services as outbound

MAX_REPLY_TO = 255
MAX_EMOJI = 16


def find(session: Session, actor: Actor, conversation_id: int) -> Conversation:
    """The conversation as the actor may see it; SigDesk itself sees every one."""
    found = (
        session.get(Conversation, conversation_id)
        if actor.user is None
        else get_visible(session, actor.user, conversation_id)
    )
    if found is None:
        raise NotFound("No such conversation (or it is assigned to someone else)", field="conversation_id")
    return found


def _target(conversation: Conversation) -> str:
    return f"conversation:{conversation.id}"


@dataclass(frozen=True)
class StoredFile:
    """An attachment already checked and kept in the media store, shown in the thread from our copy."""

    storage_key: str
    mime_type: str
    filename: str
    size: int


def send(
    session: Session,
    actor: Actor,
    conversation_id: int,
    kind: str,
    content: dict[str, Any],
    reply_to: str | None = None,
    stored: StoredFile | None = None,
) -> Message:
    """Queue a WhatsApp message; the worker sends it (woken by the message.queued event)."""
    return _queue(session, actor, find(session, actor, conversation_id), kind, content, reply_to, stored)


def _queue(
    session: Session,
    actor: Actor,
    conversation: Conversation,
    kind: str,
    content: dict[str, Any],
    reply_to: str | None = None,
    stored: StoredFile | None = None,
) -> Message:
    if reply_to is not None and (not isinstance(reply_to, str) or not reply_to or len(reply_to) > MAX_REPLY_TO):
        raise UserError("'reply_to' must be a message's wamid", field="reply_to")
    message = outbound.queue(session, conversation, kind, content, author_id=actor.user_id, reply_to_wamid=reply_to)
    if stored is not None:
        message.storage_key, message.media_state, message.mime_type = (
            stored.storage_key,
            MediaState.READY.value,
            stored.mime_type,
        )
        message.filename, message.file_size = stored.filename[:255], stored.size
        session.flush()
    record_by(session, actor, "message.queue", _target(conversation), {"message_id": message.id, "type": kind})
    record(session, MessageQueued(conversation.id, conversation.assignee_id, message.id, kind, actor.user_id))
    return message


def react(session: Session, actor: Actor, conversation_id: int, message_id: Any, emoji: Any) -> Message:
    """React to a message (an empty emoji takes the reaction back)."""
    if not isinstance(emoji, str) or len(emoji) > MAX_EMOJI:
        raise UserError("Choose an emoji (or an empty one to take a reaction back)", field="emoji")
    conversation = find(session, actor, conversation_id)
    target = (
        session.get(Message, message_id) if isinstance(message_id, int) and not isinstance(message_id, bool) else None
    )
    if target is None or target.conversation_id != conversation.id or not target.wamid:
        raise NotFound("That message cannot take a reaction (it has not reached WhatsApp)", field="message_id")
    return _queue(session, actor, conversation, "reaction", {"message_id": target.wamid, "emoji": emoji})


def send_template(
    session: Session, actor: Actor, conversation_id: int, template_id: Any, params: dict[str, list[str]]
) -> Message:
    if not isinstance(template_id, int) or isinstance(template_id, bool):
        raise UserError("Give 'template_id', a synced template's id", field="template_id")
    conversation = find(session, actor, conversation_id)
    return _queue(session, actor, conversation, "template", templates.template_content(session, template_id, params))


def retry(session: Session, actor: Actor, conversation_id: int, message_id: int) -> Message:
    """A person decided to send a failed message again (after checking the customer's chat)."""
    conversation = find(session, actor, conversation_id)
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id:
        raise NotFound("No such message in this conversation", field="message_id")
    outbound.retry(session, message)
    record_by(session, actor, "message.retry", _target(conversation), {"message_id": message.id})
    record(session, MessageRetried(conversation.id, conversation.assignee_id, message.id))
    return message


def mark_read(session: Session, actor: Actor, conversation_id: int) -> Conversation:
    """Clear the unread count; the read receipt, when the business sends them, goes out from the worker."""
    conversation = find(session, actor, conversation_id)
    outbound.mark_read(session, conversation, None, False)
    record(session, ConversationRead(conversation.id, conversation.assignee_id, actor.user_id))
    return conversation


def add_note(session: Session, actor: Actor, conversation_id: int, body: Any) -> Note:
    conversation = find(session, actor, conversation_id)
    note = actions.add_note(session, conversation, actor.user, body if isinstance(body, str) else "")
    record_by(session, actor, "note.add", _target(conversation), {"note_id": note.id})
    record(session, NoteAdded(conversation.id, conversation.assignee_id, note.id))
    return note


def assign(session: Session, actor: Actor, conversation_id: int, assignee_id: int | None) -> Conversation:
    """Hand the conversation to a team member (or to nobody); nothing is recorded when nothing changes."""
    if assignee_id is not None and (not isinstance(assignee_id, int) or isinstance(assignee_id, bool)):
        raise UserError("'assignee_id' must be a team member's id, \"me\" or null", field="assignee_id")
    conversation = find(session, actor, conversation_id)
    previous = actions.assign(session, conversation, assignee_id)
    if previous == assignee_id:
        return conversation
    name = session.scalar(select(User.name).where(User.id == assignee_id)) if assignee_id else None
    actions.record_activity(
        session,
        conversation,
        actor.user,
        f"{actor.name} assigned this to {name}." if name else f"{actor.name} unassigned this conversation.",
    )
    record_by(session, actor, "conversation.assign", _target(conversation), {"from": previous, "to": assignee_id})
    record(session, ConversationAssigned(conversation.id, assignee_id, previous))
    return conversation


STATUS_WORDS = {"open": "reopened", "pending": "marked this pending", "resolved": "resolved this conversation"}


def set_status(
    session: Session, actor: Actor, conversation_id: int, status: Any, snoozed_until: datetime | None = None
) -> Conversation:
    """Open, pending, resolved, or snoozed until a time (which the worker then reopens)."""
    if not isinstance(status, str):
        raise UserError("Give a 'status'", field="status")
    conversation = find(session, actor, conversation_id)
    before = conversation.status
    actions.set_status(session, conversation, status, snoozed_until)
    if before == status and not snoozed_until:
        return conversation
    until = conversation.snoozed_until
    actions.record_activity(
        session,
        conversation,
        actor.user,
        f"{actor.name} snoozed this until {clock.format_moment(until, clock.business_zone(session))}."
        if until
        else f"{actor.name} {STATUS_WORDS.get(status, status)}.",
    )
    record_by(session, actor, "conversation.status", _target(conversation), {"from": before, "to": status})
    record(
        session,
        ConversationStatusChanged(
            conversation.id, conversation.assignee_id, status, before, until.isoformat() if until else None
        ),
    )
    return conversation


def reopen_snoozed(session: Session) -> int:
    """SigDesk reopens snoozed conversations whose time has come (the worker's SnoozeWaker calls this)."""
    reopened = actions.reopen_snoozed(session)
    for conversation_id, assignee_id in reopened:
        record(session, ConversationStatusChanged(conversation_id, assignee_id, "open", "snoozed"))
    return len(reopened)


class SnoozeWaker:
    """The worker task that reopens snoozed conversations; looks at most every `every` seconds."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._next = 0.0
        self._lock = threading.Lock()

    def __call__(self, session: Session) -> int:
        with self._lock:
            if time.monotonic() < self._next:
                return 0
            self._next = time.monotonic() + self.every
        with write_lock(session):
            reopened = reopen_snoozed(session)
            session.commit()
        return reopened


def set_label(session: Session, actor: Actor, conversation_id: int, label_id: Any, on: Any) -> Conversation:
    if not isinstance(label_id, int) or isinstance(label_id, bool) or not isinstance(on, bool):
        raise UserError("Give 'label_id' and 'on' (true or false)", field="label_id")
    conversation = find(session, actor, conversation_id)
    if labels.set_label(session, conversation, label_id, on):
        record_by(session, actor, "conversation.label", _target(conversation), {"label_id": label_id, "on": on})
        record(session, ConversationLabelled(conversation.id, conversation.assignee_id, label_id, on))
    return conversation
