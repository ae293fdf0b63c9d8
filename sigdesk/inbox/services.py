"""The team inbox: the conversation list, thread pages, assignment, status, labels, notes, canned responses.

Every read goes through conversations.visible(), the one visibility rule. The list is one indexed
query on conversations joined to contacts; the previews of the page's rows are then read by id
through the (conversation_id, id) index, so neither grows with the size of the message table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from sigdesk.conversations.actions import NOTICE_TYPES
from sigdesk.conversations.services import agents_see_all, visible
from sigdesk.errors import UserError
from sigdesk.db import read_json
from sigdesk.paging import Cursor
from sigdesk.message_templates import services as message_templates
from sigdesk.models import (
    Contact,
    Conversation,
    ConversationLabel,
    ConversationStatus,
    Direction,
    Label,
    Message,
    Note,
    Reaction,
    Template,
    User,
)

PAGE = 50
MAX_PAGE = 200
# Notices about other messages: shown on their target, not as rows of their own.
HIDDEN_TYPES = NOTICE_TYPES
VIEWS = ("all", "mine", "unassigned")
STATUSES = tuple(status.value for status in ConversationStatus)
MAX_NOTE = 10_000
MAX_LABEL = 64
MAX_CANNED = 4096
SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
LABEL_COLORS = 8


class InboxError(UserError):
    """A request the inbox cannot carry out; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400, field: str | None = None) -> None:
        super().__init__(message, status, field)


# --- the conversation list ---------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the list shows; inbox/schemas.py's ListQuery reads them from the query string."""

    view: str = "all"
    status: str = "open"
    label_id: int | None = None
    unread: bool = False


@dataclass
class Preview:
    type: str
    text: str | None
    direction: str
    status: str | None
    revoked: bool


@dataclass
class Row:
    conversation: Conversation
    contact: Contact
    preview: Preview | None = None
    labels: list[Label] = field(default_factory=list)
    assignee: str | None = None


@dataclass
class ListPage:
    rows: list[Row]
    next_cursor: str | None


def _visible(session: Session, user: User):
    return visible(user, agents_see_all(session))


def list_page(
    session: Session, user: User, filters: Filters, before: Cursor | None = None, limit: int = PAGE
) -> ListPage:
    limit = min(max(limit, 1), MAX_PAGE)
    query = _visible(session, user).join(Contact, Contact.id == Conversation.contact_id).add_columns(Contact)
    if filters.view == "mine":
        query = query.where(Conversation.assignee_id == user.id)
    elif filters.view == "unassigned":
        query = query.where(Conversation.assignee_id.is_(None))
    if filters.status != "any":
        query = query.where(Conversation.status == filters.status)
    if filters.unread:
        query = query.where(Conversation.unread_count > 0)
    if filters.label_id is not None:
        query = query.where(
            Conversation.id.in_(
                select(ConversationLabel.conversation_id).where(ConversationLabel.label_id == filters.label_id)
            )
        )
    if before is not None:
        at = Conversation.last_message_at
        if before.at is None:
            query = query.where(at.is_(None), Conversation.id < before.id)
        else:
            query = query.where(or_(at < before.at, and_(at == before.at, Conversation.id < before.id), at.is_(None)))
    query = query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit + 1)
    found = [Row(conversation, contact) for conversation, contact in session.execute(query)]
    more = len(found) > limit
    rows = found[:limit]
    _decorate(session, rows)
    last = rows[-1].conversation if rows else None
    return ListPage(rows, Cursor(last.last_message_at, last.id).encode() if more and last else None)


def row_for(session: Session, user: User, conversation_id: int) -> Row | None:
    """One list row, for a live update of that conversation."""
    found = session.execute(
        _visible(session, user)
        .join(Contact, Contact.id == Conversation.contact_id)
        .add_columns(Contact)
        .where(Conversation.id == conversation_id)
    ).first()
    if found is None:
        return None
    rows = [Row(found[0], found[1])]
    _decorate(session, rows)
    return rows[0]


def _decorate(session: Session, rows: list[Row]) -> None:
    if not rows:
        return
    by_id = {row.conversation.id: row for row in rows}
    latest = (
        select(Message.id)
        .where(Message.conversation_id == Conversation.id, Message.type.not_in(HIDDEN_TYPES))
        .order_by(Message.id.desc())
        .limit(1)
        .with_hint(Message, "FORCE INDEX (ix_messages_conversation_id_id)", "mysql")  # else a filesort, ~25 ms
        .scalar_subquery()
    )
    last_ids = select(latest).where(Conversation.id.in_(by_id))
    previews = session.execute(
        select(
            Message.conversation_id,
            Message.type,
            Message.text,
            Message.caption,
            Message.filename,
            Message.direction,
            Message.status,
            Message.revoked_at,
        ).where(Message.id.in_(last_ids))
    )
    for conversation_id, kind, text, caption, filename, direction, status, revoked_at in previews:
        by_id[conversation_id].preview = Preview(
            kind, text or caption or filename, direction, status, revoked_at is not None
        )
    labels = session.execute(
        select(ConversationLabel.conversation_id, Label)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.conversation_id.in_(by_id))
        .order_by(Label.name)
    )
    for conversation_id, label in labels:
        by_id[conversation_id].labels.append(label)
    assignees = {row.conversation.assignee_id for row in rows if row.conversation.assignee_id}
    if assignees:
        names = dict(session.execute(select(User.id, User.name).where(User.id.in_(assignees))).all())
        for row in rows:
            row.assignee = names.get(row.conversation.assignee_id)


def unread_total(session: Session, user: User) -> int:
    """The header badge: unread messages across what this user sees, using the unread_count index."""
    query = (
        _visible(session, user)
        .where(Conversation.unread_count > 0)
        .with_only_columns(func.sum(Conversation.unread_count))
    )
    return int(session.scalar(query) or 0)


def get_conversation(session: Session, user: User, conversation_id: int) -> tuple[Conversation, Contact]:
    found = session.execute(
        _visible(session, user)
        .join(Contact, Contact.id == Conversation.contact_id)
        .add_columns(Contact)
        .where(Conversation.id == conversation_id)
    ).first()
    if found is None:
        raise InboxError("No such conversation (or it is assigned to someone else)", 404)
    return found[0], found[1]


# --- threads -----------------------------------------------------------------------------------


@dataclass
class Thread:
    """One page of a conversation, oldest first, with everything its messages point at."""

    messages: list[Message]
    notes: list[Note] = field(default_factory=list)
    has_older: bool = False
    has_newer: bool = False
    reactions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    quoted: dict[str, Message] = field(default_factory=dict)
    authors: dict[int, str] = field(default_factory=dict)
    template_texts: dict[int, str | None] = field(default_factory=dict)
    focus: int | None = None

    def items(self) -> list[tuple[str, Any]]:
        """Messages and notes merged in time order (messages keep their stored order)."""
        notes = sorted(self.notes, key=lambda note: (note.created_at, note.id))
        merged: list[tuple[str, Any]] = []
        index = 0
        for message in self.messages:
            while index < len(notes) and notes[index].created_at < message.timestamp:
                merged.append(("note", notes[index]))
                index += 1
            merged.append(("message", message))
        merged.extend(("note", note) for note in notes[index:])
        return merged


def _messages(conversation: Conversation):
    return select(Message).where(Message.conversation_id == conversation.id, Message.type.not_in(HIDDEN_TYPES))


def thread(
    session: Session,
    conversation: Conversation,
    before: int | None = None,
    after: int | None = None,
    around: int | None = None,
    limit: int = PAGE,
) -> Thread:
    """The latest page, or the page before/after a message, or a page centred on one (jump to message)."""
    limit = min(max(limit, 1), MAX_PAGE)
    if after is not None:
        newer = list(
            session.scalars(_messages(conversation).where(Message.id > after).order_by(Message.id).limit(limit + 1))
        )
        page = Thread(newer[:limit], has_newer=len(newer) > limit)
        _attach(session, conversation, page, notes=False)
        return page
    if around is not None:
        target = session.scalar(
            select(Message.id).where(Message.id == around, Message.conversation_id == conversation.id)
        )
        if target is None:
            raise InboxError("No such message in this conversation", 404)
        half = limit // 2
        older = list(
            session.scalars(
                _messages(conversation).where(Message.id <= around).order_by(Message.id.desc()).limit(half + 1)
            )
        )
        newer = list(
            session.scalars(
                _messages(conversation).where(Message.id > around).order_by(Message.id).limit(limit - half + 1)
            )
        )
        page = Thread(
            older[: half + 1][::-1] if len(older) <= half else older[:half][::-1],
            has_older=len(older) > half,
            has_newer=len(newer) > limit - half,
            focus=around,
        )
        page.messages.extend(newer[: limit - half])
        _attach(session, conversation, page)
        return page
    query = _messages(conversation)
    if before is not None:
        query = query.where(Message.id < before)
    older = list(session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    page = Thread(older[:limit][::-1], has_older=len(older) > limit)
    _attach(session, conversation, page)
    return page


def one_message(session: Session, conversation: Conversation, message_id: int) -> Thread:
    message = session.scalar(_messages(conversation).where(Message.id == message_id))
    if message is None:
        raise InboxError("No such message in this conversation", 404)
    page = Thread([message])
    _attach(session, conversation, page, notes=False)
    return page


def _attach(session: Session, conversation: Conversation, page: Thread, notes: bool = True) -> None:
    messages = page.messages
    if notes:
        query = select(Note).where(Note.conversation_id == conversation.id)
        if page.has_older and messages:
            query = query.where(Note.created_at >= messages[0].timestamp)
        if page.has_newer and messages:
            query = query.where(Note.created_at < messages[-1].timestamp)
        page.notes = list(session.scalars(query.order_by(Note.created_at, Note.id).limit(MAX_PAGE)))
    wamids = [message.wamid for message in messages if message.wamid]
    if wamids:
        rows = session.execute(
            select(Reaction.target_wamid, Reaction.emoji).where(
                Reaction.target_wamid.in_(wamids), Reaction.emoji.is_not(None)
            )
        )
        for target, emoji in rows:
            page.reactions.setdefault(target, []).append(("customer", emoji))
        if messages:
            ours = session.execute(
                select(Message.details)
                .where(
                    Message.conversation_id == conversation.id,
                    Message.id >= messages[0].id,
                    Message.type == "reaction",
                    Message.direction == Direction.OUT.value,
                    Message.status.not_in(("failed",)),
                )
                .order_by(Message.id)
            )
            latest: dict[str, str | None] = {}
            for (details,) in ours:
                content = read_json(details, dict, "messages.details")
                if content.get("message_id"):
                    latest[content["message_id"]] = content.get("emoji") or None
            for target, emoji in latest.items():
                if emoji and target in wamids:
                    page.reactions.setdefault(target, []).append(("us", emoji))
    replied = {message.reply_to_wamid for message in messages if message.reply_to_wamid}
    if replied:
        page.quoted = {
            row.wamid: row
            for row in session.scalars(
                select(Message).where(Message.wamid.in_(replied), Message.conversation_id == conversation.id)
            )
        }
    author_ids = {message.author_id for message in messages if message.author_id}
    author_ids |= {note.author_id for note in page.notes if note.author_id}
    if author_ids:
        page.authors = dict(session.execute(select(User.id, User.name).where(User.id.in_(author_ids))).all())
    sent = {
        message.id: read_json(message.details, dict, "messages.details")
        for message in messages
        if message.type == "template" and message.payload
    }
    names = {content.get("name") for content in sent.values() if isinstance(content.get("name"), str)}
    if names:
        known = {
            (row.name, row.language): row for row in session.scalars(select(Template).where(Template.name.in_(names)))
        }
        for message_id, content in sent.items():
            language = content.get("language") if isinstance(content.get("language"), dict) else {}
            page.template_texts[message_id] = message_templates.sent_text(
                known.get((content.get("name"), language.get("code"))), content
            )
