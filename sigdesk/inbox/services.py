"""The team inbox: the conversation list, thread pages, assignment, status, labels, notes, canned responses.

Every read goes through conversations.visible(), the one visibility rule. The list is one indexed
query on conversations joined to contacts; the previews of the page's rows are then read by id
through the (conversation_id, id) index, so neither grows with the size of the message table.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sigdesk.conversations.services import agents_see_all, visible
from sigdesk.db import utcnow, write_lock
from sigdesk.errors import UserError
from sigdesk.inbox.format import json_object
from sigdesk.models import (
    CannedResponse,
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
HIDDEN_TYPES = ("edit", "revoke", "reaction")
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
    view: str = "all"
    status: str = "open"
    label_id: int | None = None
    unread: bool = False

    @classmethod
    def parse(cls, args: dict[str, str]) -> "Filters":
        view = args.get("view") or "all"
        status = args.get("status") or "open"
        if view not in VIEWS:
            raise InboxError(f"'view' must be one of {', '.join(VIEWS)}")
        if status not in (*STATUSES, "any"):
            raise InboxError(f"'status' must be one of {', '.join(STATUSES)} or any")
        label = args.get("label") or ""
        if label and not label.isdigit():
            raise InboxError("'label' must be a label id")
        return cls(view, status, int(label) if label else None, args.get("unread") in ("1", "true", "on"))


@dataclass(frozen=True)
class Cursor:
    """Where a list page ends: (last activity, id) of its last row; keyset paging keeps pages index-ordered."""

    at: datetime | None
    id: int

    def encode(self) -> str:
        return f"{self.at.isoformat() if self.at else ''}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        at_text, _, id_text = text.rpartition("~")
        try:
            at = datetime.fromisoformat(at_text) if at_text else None
        except ValueError:
            at = None
            id_text = ""
        if not id_text.isdigit() or (at is not None and at.tzinfo is None):
            raise InboxError("'before' is not a list position SigDesk gave out")
        return cls(at, int(id_text))


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


def list_page(session: Session, user: User, filters: Filters, before: Cursor | None = None, limit: int = PAGE) -> ListPage:
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
        query = query.where(Conversation.id.in_(
            select(ConversationLabel.conversation_id).where(ConversationLabel.label_id == filters.label_id)))
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
        _visible(session, user).join(Contact, Contact.id == Conversation.contact_id).add_columns(Contact)
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
        select(Message.conversation_id, Message.type, Message.text, Message.caption, Message.filename,
               Message.direction, Message.status, Message.revoked_at)
        .where(Message.id.in_(last_ids))
    )
    for conversation_id, kind, text, caption, filename, direction, status, revoked_at in previews:
        by_id[conversation_id].preview = Preview(kind, text or caption or filename, direction, status, revoked_at is not None)
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
    query = _visible(session, user).where(Conversation.unread_count > 0).with_only_columns(func.sum(Conversation.unread_count))
    return int(session.scalar(query) or 0)


def get_conversation(session: Session, user: User, conversation_id: int) -> tuple[Conversation, Contact]:
    found = session.execute(
        _visible(session, user).join(Contact, Contact.id == Conversation.contact_id).add_columns(Contact)
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
        newer = list(session.scalars(_messages(conversation).where(Message.id > after).order_by(Message.id).limit(limit + 1)))
        page = Thread(newer[:limit], has_newer=len(newer) > limit)
        _attach(session, conversation, page, notes=False)
        return page
    if around is not None:
        target = session.scalar(select(Message.id).where(Message.id == around, Message.conversation_id == conversation.id))
        if target is None:
            raise InboxError("No such message in this conversation", 404)
        half = limit // 2
        older = list(session.scalars(
            _messages(conversation).where(Message.id <= around).order_by(Message.id.desc()).limit(half + 1)))
        newer = list(session.scalars(
            _messages(conversation).where(Message.id > around).order_by(Message.id).limit(limit - half + 1)))
        page = Thread(older[:half + 1][::-1] if len(older) <= half else older[:half][::-1],
                      has_older=len(older) > half, has_newer=len(newer) > limit - half, focus=around)
        page.messages.extend(newer[:limit - half])
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
            select(Reaction.target_wamid, Reaction.emoji).where(Reaction.target_wamid.in_(wamids), Reaction.emoji.is_not(None)))
        for target, emoji in rows:
            page.reactions.setdefault(target, []).append(("customer", emoji))
        if messages:
            ours = session.execute(
                select(Message.details).where(
                    Message.conversation_id == conversation.id, Message.id >= messages[0].id,
                    Message.type == "reaction", Message.direction == Direction.OUT.value,
                    Message.status.not_in(("failed",)),
                ).order_by(Message.id)
            )
            latest: dict[str, str | None] = {}
            for (details,) in ours:
                content = json_object(details)
                if content.get("message_id"):
                    latest[content["message_id"]] = content.get("emoji") or None
            for target, emoji in latest.items():
                if emoji and target in wamids:
                    page.reactions.setdefault(target, []).append(("us", emoji))
    replied = {message.reply_to_wamid for message in messages if message.reply_to_wamid}
    if replied:
        page.quoted = {row.wamid: row for row in session.scalars(
            select(Message).where(Message.wamid.in_(replied), Message.conversation_id == conversation.id))}
    author_ids = {message.author_id for message in messages if message.author_id}
    author_ids |= {note.author_id for note in page.notes if note.author_id}
    if author_ids:
        page.authors = dict(session.execute(select(User.id, User.name).where(User.id.in_(author_ids))).all())
    sent = {message.id: json_object(message.details) for message in messages if message.type == "template" and message.payload}
    names = {content.get("name") for content in sent.values() if isinstance(content.get("name"), str)}
    if names:
        known = {(row.name, row.language): row for row in session.scalars(select(Template).where(Template.name.in_(names)))}
        for message_id, content in sent.items():
            language = content.get("language") if isinstance(content.get("language"), dict) else {}
            page.template_texts[message_id] = template_text(known.get((content.get("name"), language.get("code"))), content)


# --- changes -----------------------------------------------------------------------------------


def assign(session: Session, conversation: Conversation, assignee_id: int | None) -> int | None:
    """Hand the conversation to a team member (or to nobody); returns who had it before."""
    if assignee_id is not None:
        user = session.get(User, assignee_id)
        if user is None or not user.is_active:
            raise InboxError("There is no active team member with that id")
    previous = conversation.assignee_id
    conversation.assignee_id = assignee_id
    session.flush()
    return previous


def set_status(session: Session, conversation: Conversation, status: str, snoozed_until: datetime | None = None,
               now: datetime | None = None) -> None:
    now = now or utcnow()
    if status not in STATUSES:
        raise InboxError(f"Status must be one of {', '.join(STATUSES)}")
    if status == ConversationStatus.SNOOZED.value:
        if snoozed_until is None:
            raise InboxError("Say until when to snooze the conversation")
        if snoozed_until.tzinfo is None:
            raise InboxError("The snooze time needs a time zone")
        if snoozed_until <= now:
            raise InboxError("The snooze time is in the past; choose a later time")
        conversation.snoozed_until = snoozed_until
    else:
        conversation.snoozed_until = None
    conversation.status = status
    session.flush()


def reopen_snoozed(session: Session, now: datetime | None = None) -> list[tuple[int, int | None]]:
    """Snoozed conversations whose time has come are open again; (id, assignee) of each."""
    now = now or utcnow()
    due = session.execute(
        select(Conversation.id, Conversation.assignee_id)
        .where(Conversation.status == ConversationStatus.SNOOZED.value, Conversation.snoozed_until <= now)
    ).all()
    if due:
        session.execute(
            update(Conversation)
            .where(Conversation.id.in_([row[0] for row in due]), Conversation.status == ConversationStatus.SNOOZED.value)
            .values(status=ConversationStatus.OPEN.value, snoozed_until=None)
        )
        session.add_all([Note(conversation_id=row[0], author_id=None, body="The snooze ended; the conversation is open again.",
                              kind="activity", created_at=now) for row in due])
        session.flush()
    return [(row[0], row[1]) for row in due]


class SnoozeWaker:
    """The worker task that reopens snoozed conversations; looks at most every `every` seconds."""

    def __init__(self, published: Callable[[list[tuple[int, int | None]]], None], every: float = 10.0) -> None:
        self.published = published
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
        if reopened:
            self.published(reopened)
        return len(reopened)


def add_note(session: Session, conversation: Conversation, author: User, body: str) -> Note:
    text = (body or "").strip()
    if not text:
        raise InboxError("A note needs some text")
    if len(text) > MAX_NOTE:
        raise InboxError(f"Notes are limited to {MAX_NOTE} characters")
    note = Note(conversation_id=conversation.id, author_id=author.id, body=text, kind="note", created_at=utcnow())
    session.add(note)
    session.flush()
    return note


def record_activity(session: Session, conversation: Conversation, actor: User | None, text: str) -> Note:
    """A line in the thread and the side panel's history: who assigned, resolved or snoozed, and when."""
    note = Note(conversation_id=conversation.id, author_id=actor.id if actor else None, body=text[:MAX_NOTE],
                kind="activity", created_at=utcnow())
    session.add(note)
    session.flush()
    return note


def history(session: Session, conversation: Conversation, limit: int = 20) -> list[Note]:
    return list(session.scalars(
        select(Note).where(Note.conversation_id == conversation.id, Note.kind == "activity")
        .order_by(Note.created_at.desc(), Note.id.desc()).limit(limit)))


def message_count(session: Session, conversation: Conversation) -> int:
    return int(session.scalar(
        select(func.count()).select_from(Message).where(Message.conversation_id == conversation.id)) or 0)


def get_note(session: Session, conversation: Conversation, note_id: int) -> Note:
    note = session.get(Note, note_id)
    if note is None or note.conversation_id != conversation.id:
        raise InboxError("No such note in this conversation", 404)
    return note


# --- labels ------------------------------------------------------------------------------------


def list_labels(session: Session) -> list[Label]:
    return list(session.scalars(select(Label).order_by(Label.name)))


def labels_of(session: Session, conversation: Conversation) -> list[Label]:
    return list(session.scalars(
        select(Label).join(ConversationLabel, ConversationLabel.label_id == Label.id)
        .where(ConversationLabel.conversation_id == conversation.id).order_by(Label.name)))


def create_label(session: Session, name: str, color: int | None = None) -> Label:
    name = (name or "").strip()
    if not name or len(name) > MAX_LABEL:
        raise InboxError(f"A label name is 1 to {MAX_LABEL} characters")
    if session.scalar(select(Label.id).where(Label.name == name)) is not None:
        raise InboxError(f"There already is a label '{name}'", 409)
    count = session.scalar(select(func.count()).select_from(Label)) or 0
    label = Label(name=name, color=(color if color is not None else count) % LABEL_COLORS, created_at=utcnow())
    session.add(label)
    _flush_unique(session, f"There already is a label '{name}'")
    return label


def _flush_unique(session: Session, taken: str) -> None:
    """The checks before it find a clash in the usual case; this catches one that raced past them."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise InboxError(taken, 409) from exc


def delete_label(session: Session, label_id: int) -> None:
    label = session.get(Label, label_id)
    if label is None:
        raise InboxError("No such label", 404)
    session.execute(delete(ConversationLabel).where(ConversationLabel.label_id == label_id))
    session.delete(label)
    session.flush()


def set_label(session: Session, conversation: Conversation, label_id: int, on: bool) -> None:
    if session.get(Label, label_id) is None:
        raise InboxError("No such label", 404)
    exists = session.get(ConversationLabel, (conversation.id, label_id))
    if on and exists is None:
        session.add(ConversationLabel(conversation_id=conversation.id, label_id=label_id, created_at=utcnow()))
    elif not on and exists is not None:
        session.delete(exists)
    session.flush()


# --- canned responses --------------------------------------------------------------------------


def list_canned(session: Session, prefix: str = "") -> list[CannedResponse]:
    query = select(CannedResponse).order_by(CannedResponse.shortcut)
    prefix = prefix.strip().lstrip("/").lower()
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(CannedResponse.shortcut.like(escaped + "%", escape="\\"))
    return list(session.scalars(query.limit(MAX_PAGE)))


def _canned_fields(shortcut: str, body: str) -> tuple[str, str]:
    shortcut = (shortcut or "").strip().lstrip("/").lower()
    body = (body or "").strip()
    if not SHORTCUT.fullmatch(shortcut):
        raise InboxError("A shortcut is 1 to 64 letters, digits, - or _ (typed after /)")
    if not body or len(body) > MAX_CANNED:
        raise InboxError(f"The response text is 1 to {MAX_CANNED} characters")
    return shortcut, body


def create_canned(session: Session, shortcut: str, body: str, author: User | None) -> CannedResponse:
    shortcut, body = _canned_fields(shortcut, body)
    if session.scalar(select(CannedResponse.id).where(CannedResponse.shortcut == shortcut)) is not None:
        raise InboxError(f"The shortcut /{shortcut} is already taken", 409)
    now = utcnow()
    canned = CannedResponse(shortcut=shortcut, body=body, created_by=author.id if author else None, created_at=now, updated_at=now)
    session.add(canned)
    _flush_unique(session, f"The shortcut /{shortcut} is already taken")
    return canned


def update_canned(session: Session, canned_id: int, shortcut: str, body: str) -> CannedResponse:
    canned = session.get(CannedResponse, canned_id)
    if canned is None:
        raise InboxError("No such canned response", 404)
    shortcut, body = _canned_fields(shortcut, body)
    clash = session.scalar(select(CannedResponse.id).where(CannedResponse.shortcut == shortcut, CannedResponse.id != canned_id))
    if clash is not None:
        raise InboxError(f"The shortcut /{shortcut} is already taken", 409)
    canned.shortcut, canned.body, canned.updated_at = shortcut, body, utcnow()
    _flush_unique(session, f"The shortcut /{shortcut} is already taken")
    return canned


def delete_canned(session: Session, canned_id: int) -> None:
    canned = session.get(CannedResponse, canned_id)
    if canned is None:
        raise InboxError("No such canned response", 404)
    session.delete(canned)
    session.flush()


# --- sending -----------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{\{\s*(\d{1,2})\s*\}\}")


def approved_templates(session: Session) -> list[Template]:
    return list(session.scalars(select(Template).where(func.upper(Template.status) == "APPROVED").order_by(Template.name, Template.language)))


def template_content(session: Session, template_id: int, params: dict[str, list[str]]) -> dict[str, Any]:
    """Meta's template object for an approved template with its {{n}} placeholders filled in."""
    template = session.get(Template, template_id)
    if template is None:
        raise InboxError("No such template; sync templates from Meta first", 404)
    components: list[dict[str, Any]] = []
    for component in _components(template):
        kind = str(component.get("type", "")).lower()
        if kind not in ("header", "body"):
            continue
        if kind == "header" and str(component.get("format", "TEXT")).upper() != "TEXT":
            continue
        count = len(set(PLACEHOLDER.findall(component.get("text") or "")))
        if not count:
            continue
        values = params.get(kind) or []
        if len(values) < count or any(not isinstance(value, str) or not value.strip() for value in values[:count]):
            raise InboxError(f"Fill in all {count} variable{'s' if count != 1 else ''} of the template's {kind}")
        components.append({"type": kind, "parameters": [{"type": "text", "text": value.strip()} for value in values[:count]]})
    content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        content["components"] = components
    return content


def _components(template: Template) -> list[dict[str, Any]]:
    try:
        value = json.loads(template.components or "[]")
    except ValueError:
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def template_text(template: Template | None, content: dict[str, Any]) -> str | None:
    """The words a sent template showed the customer, placeholders filled from what was sent."""
    if template is None:
        return None
    values: dict[str, list[str]] = {}
    for component in content.get("components") or []:
        if isinstance(component, dict):
            values[str(component.get("type", "")).lower()] = [
                str(item.get("text", "")) for item in component.get("parameters") or [] if isinstance(item, dict)]
    parts = []
    for component in _components(template):
        kind = str(component.get("type", "")).lower()
        text = component.get("text")
        if kind in ("header", "body", "footer") and isinstance(text, str):
            filled = values.get(kind, [])
            parts.append(PLACEHOLDER.sub(
                lambda match: filled[int(match.group(1)) - 1] if 0 < int(match.group(1)) <= len(filled) else match.group(0), text))
    return "\n".join(parts) or None
