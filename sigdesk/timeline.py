"""A contact's timeline: everything that happened to the customer, newest first, from every feature.

Each kind of happening is a *source*: a function that reads its own table and returns TimelineEntry rows
after a position, newest first. The timeline merges the sources, so a feature that comes later (orders,
merges) adds itself with one `register_source` call from its feature.py and the contact page needs no
change. Paging is by keyset over (at, source, id), so a page never repeats or skips an entry, even when
two entries of different sources share the same second (MariaDB keeps whole seconds).

A read model (no views, no Flask) below the entry points: the contact page (sigdesk.crm) shows it, and the
features that add sources (sales) import it without building on the Contacts section.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from sigdesk.conversations.services import agents_see_all, may_see
from sigdesk.errors import UserError
from sigdesk.lifecycle.services import get_contact_id
from sigdesk.models import AuditEvent, ConsentEvent, ContactField, Conversation, Note, StageChange, Tag, User
from sigdesk.paging import MAX_CURSOR, MAX_ID, Page

MAX_LIMIT = 100


class TimelineEntry(BaseModel):
    """One happening in a contact's life, as the contact page shows it."""

    at: datetime
    source: str = Field(description="Which source it came from: conversation, note, stage, consent, record...")
    id: int = Field(description="The row's id within its source (with `source`, unique in the timeline)")
    kind: str = Field(description="What happened, for styling: conversation.started, consent.opted_out...")
    title: str = Field(description="One line saying what happened")
    detail: str | None = Field(default=None, description="More words: a note's text, consent evidence")
    by: str | None = Field(default=None, description="Who did it: a team member's name, or SigDesk")
    link: str | None = Field(default=None, description="An endpoint to open it, as 'inbox:<conversation id>'")


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last entry's (at, source, id). Entries come in (at, source, id) descending."""

    at: datetime
    source: str
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.source, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str, field: str = "before") -> "Position":
        refused = UserError(f"'{field}' is not a timeline position SigDesk gave out", field=field)
        if not isinstance(text, str) or len(text) > MAX_CURSOR:
            raise refused
        try:
            at, source, id_ = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            when = datetime.fromisoformat(at)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise refused from exc
        if not isinstance(source, str) or not isinstance(id_, int) or isinstance(id_, bool) or not 0 < id_ <= MAX_ID:
            raise refused
        if when.tzinfo is None:
            raise refused
        return cls(when, source, id_)

    def after(self, source: str, at: Any, id_: Any) -> ColumnElement[bool]:
        """Rows of `source` that come after this position, newest first (for a source's query)."""
        if source < self.source:
            return at <= self.at
        if source > self.source:
            return at < self.at
        return or_(at < self.at, and_(at == self.at, id_ < self.id))


# A source: (session, contact_id, position or None, limit) -> up to `limit` entries after the position,
# newest first. `keyset()` applies the position and the order to a query.
Source = Callable[[Session, int, "Position | None", int], list[TimelineEntry]]
# A conversation source reads what happened in the contact's conversations (notes, statuses): it gets the
# ids of the conversations the person looking may see, and must show nothing of any other, so an agent
# never reads a team note of a conversation assigned to someone else on the contact page.
ConversationSource = Callable[[Session, int, Sequence[int], "Position | None", int], list[TimelineEntry]]
_sources: dict[str, Source] = {}
_conversation_sources: dict[str, ConversationSource] = {}


def register_source(name: str, source: Source) -> None:
    """Add a kind of happening to every contact's timeline (registering a name again replaces it)."""
    _conversation_sources.pop(name, None)
    _sources[name] = source


def register_conversation_source(name: str, source: ConversationSource) -> None:
    """Add a kind of happening inside conversations: shown only for conversations the reader may see."""
    _sources.pop(name, None)
    _conversation_sources[name] = source


def sources() -> tuple[str, ...]:
    return tuple(sorted({*_sources, *_conversation_sources}))


def visible_conversations(session: Session, user: User, contact_id: int) -> list[int]:
    """The contact's conversations `user` may open, newest first (the inbox's rule: an agent sees their own
    and unassigned ones, or all of them when the setting widens it)."""
    widened = agents_see_all(session)
    rows = session.execute(
        select(Conversation.id, Conversation.assignee_id)
        .where(Conversation.contact_id == contact_id)
        .order_by(Conversation.created_at.desc(), Conversation.id.desc())
    ).all()
    return [row.id for row in rows if may_see(user, row.assignee_id, widened)]


def keyset(query: Select, name: str, at: Any, id_: Any, before: Position | None, limit: int) -> Select:
    """`query` from after `before`, newest first, `limit` rows: what a source needs to page."""
    if before is not None:
        query = query.where(before.after(name, at, id_))
    return query.order_by(at.desc(), id_.desc()).limit(limit)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _sort_key(entry: TimelineEntry) -> tuple[datetime, str, int]:
    return (_aware(entry.at), entry.source, entry.id)


def timeline(
    session: Session, user: User, contact_id: int, before: str | Position | None = None, limit: int = 30
) -> Page[TimelineEntry]:
    """The contact's timeline as `user` may see it, newest first, `limit` entries after `before` (a cursor
    this gave out). Conversations `user` may not open leave no trace: no start, status or note."""
    get_contact_id(session, contact_id)
    if isinstance(before, str):
        before = Position.decode(before) if before else None
    limit = max(1, min(int(limit), MAX_LIMIT))
    seen = visible_conversations(session, user, contact_id)
    found: list[TimelineEntry] = []
    for name in sources():
        if name in _conversation_sources:
            found.extend(_conversation_sources[name](session, contact_id, seen, before, limit + 1))
        else:
            found.extend(_sources[name](session, contact_id, before, limit + 1))
    found.sort(key=_sort_key, reverse=True)
    items = found[:limit]
    more = len(found) > limit and bool(items)
    last = items[-1] if items else None
    return Page(items, Position(_aware(last.at), last.source, last.id).encode() if more and last else None)


# --- the sources SigDesk has today ------------------------------------------------------------------


def _names(session: Session, user_ids: set[int | None]) -> dict[int, str]:
    ids = sorted(user_id for user_id in user_ids if user_id is not None)
    if not ids:
        return {}
    return {row.id: row.name for row in session.execute(select(User.id, User.name).where(User.id.in_(ids)))}


def _who(names: dict[int, str], user_id: int | None, nobody: str | None = "SigDesk") -> str | None:
    """Who did it: the team member's name, a placeholder for one no longer there, `nobody` for SigDesk itself."""
    if not user_id:
        return nobody
    return names.get(user_id, "A former team member")


def _conversations(
    session: Session, contact_id: int, seen: Sequence[int], before: Position | None, limit: int
) -> list[TimelineEntry]:
    if not seen:
        return []
    rows = session.execute(
        keyset(
            select(Conversation.id, Conversation.created_at).where(
                Conversation.contact_id == contact_id, Conversation.id.in_(list(seen))
            ),
            "conversation",
            Conversation.created_at,
            Conversation.id,
            before,
            limit,
        )
    ).all()
    return [
        TimelineEntry(
            at=row.created_at,
            source="conversation",
            id=row.id,
            kind="conversation.started",
            title="Conversation started",
            link=f"inbox:{row.id}",
        )
        for row in rows
    ]


STATUS_TITLES = {
    "resolved": "Conversation resolved",
    "open": "Conversation reopened",
    "pending": "Conversation marked pending",
    "snoozed": "Conversation snoozed",
}


def _audit_rows(
    session: Session, name: str, targets: list[str], actions: tuple[str, ...], before: Position | None, limit: int
):
    if not targets:
        return []
    return session.execute(
        keyset(
            select(AuditEvent).where(AuditEvent.target.in_(targets), AuditEvent.action.in_(actions)),
            name,
            AuditEvent.at,
            AuditEvent.id,
            before,
            limit,
        )
    ).scalars()


def _detail(event: AuditEvent) -> dict[str, Any]:
    try:
        found = json.loads(event.detail or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _statuses(
    session: Session, contact_id: int, seen: Sequence[int], before: Position | None, limit: int
) -> list[TimelineEntry]:
    """Resolved and reopened, from the audit entries conversations.commands.set_status writes."""
    targets = [f"conversation:{cid}" for cid in seen]
    events = list(_audit_rows(session, "status", targets, ("conversation.status",), before, limit))
    names = _names(session, {event.actor_id for event in events})
    entries = []
    for event in events:
        to = _detail(event).get("to")
        entries.append(
            TimelineEntry(
                at=event.at,
                source="status",
                id=event.id,
                kind=f"conversation.{to}",
                title=STATUS_TITLES.get(str(to), f"Conversation {to}"),
                by=names.get(event.actor_id) if event.actor_id else "SigDesk",  # type: ignore[arg-type]
                link=f"inbox:{(event.target or '').partition(':')[2]}",
            )
        )
    return entries


def _notes(
    session: Session, contact_id: int, seen: Sequence[int], before: Position | None, limit: int
) -> list[TimelineEntry]:
    if not seen:
        return []
    rows = session.execute(
        keyset(
            select(Note.id, Note.created_at, Note.body, Note.author_id, Note.conversation_id)
            .join(Conversation, Conversation.id == Note.conversation_id)
            .where(Conversation.contact_id == contact_id, Note.conversation_id.in_(list(seen)), Note.kind == "note"),
            "note",
            Note.created_at,
            Note.id,
            before,
            limit,
        )
    ).all()
    names = _names(session, {row.author_id for row in rows})
    return [
        TimelineEntry(
            at=row.created_at,
            source="note",
            id=row.id,
            kind="note",
            title="Team note",
            detail=row.body,
            by=_who(names, row.author_id),
            link=f"inbox:{row.conversation_id}",
        )
        for row in rows
    ]


def _stages(session: Session, contact_id: int, before: Position | None, limit: int) -> list[TimelineEntry]:
    rows = session.execute(
        keyset(
            select(StageChange).where(StageChange.contact_id == contact_id),
            "stage",
            StageChange.changed_at,
            StageChange.id,
            before,
            limit,
        )
    ).scalars()
    changes = list(rows)
    names = _names(session, {change.actor_id for change in changes})
    return [
        TimelineEntry(
            at=change.changed_at,
            source="stage",
            id=change.id,
            kind="stage.changed",
            title=f"Stage set to {change.stage_name}" if change.stage_name else "Left its stage",
            by=_who(names, change.actor_id),
        )
        for change in changes
    ]


CONSENT_TITLES = {"opted_out": "Opted out of marketing", "opted_in": "Opted in to marketing"}


def _consent(session: Session, contact_id: int, before: Position | None, limit: int) -> list[TimelineEntry]:
    events = list(
        session.execute(
            keyset(
                select(ConsentEvent).where(ConsentEvent.contact_id == contact_id),
                "consent",
                ConsentEvent.at,
                ConsentEvent.id,
                before,
                limit,
            )
        ).scalars()
    )
    names = _names(session, {event.actor_id for event in events})
    return [
        TimelineEntry(
            at=event.at,
            source="consent",
            id=event.id,
            kind=f"consent.{event.status}",
            title=f"{CONSENT_TITLES.get(event.status, event.status)} ({event.source.replace('_', ' ')})",
            detail=event.evidence,
            by=_who(names, event.actor_id, nobody=None),
        )
        for event in events
    ]


CUSTOM_PREFIX = "fields."  # how a record edit's audit entry names a custom field
# The audit entries of a contact's record that the timeline shows (consent and stages have their own tables).
RECORD_ACTIONS = ("contact.created", "contact.updated", "contact.tag", "contact.untag", "contact.merged")


def _record(session: Session, contact_id: int, before: Position | None, limit: int) -> list[TimelineEntry]:
    events = list(_audit_rows(session, "record", [f"contact {contact_id}"], RECORD_ACTIONS, before, limit))
    names = _names(session, {event.actor_id for event in events})
    tag_ids = {_detail(event).get("tag_id") for event in events if event.action in ("contact.tag", "contact.untag")}
    wanted = [tag_id for tag_id in tag_ids if isinstance(tag_id, int)]
    tags = (
        {row.id: row.name for row in session.execute(select(Tag.id, Tag.name).where(Tag.id.in_(wanted)))}
        if wanted
        else {}
    )
    labels = _field_labels(session, events)
    entries = []
    for event in events:
        detail = _detail(event)
        if event.action in ("contact.tag", "contact.untag"):
            tag = tags.get(detail.get("tag_id"), "a tag deleted since")  # type: ignore[arg-type]
            title = f"Tagged {tag}" if event.action == "contact.tag" else f"Untagged {tag}"
            kind = "tag.on" if event.action == "contact.tag" else "tag.off"
        elif event.action == "contact.updated":
            fields = [labels.get(str(field)) or _field_words(str(field)) for field in detail.get("fields") or []]
            title = "Record edited" + (f": {', '.join(fields)}" if fields else "")
            kind = "record.edited"
        elif event.action == "contact.merged":
            title, kind = "Merged with a duplicate", "record.merged"
        else:
            title, kind = "Contact added", "record.created"
        entries.append(
            TimelineEntry(
                at=event.at,
                source="record",
                id=event.id,
                kind=kind,
                title=title,
                by=_who(names, event.actor_id),  # type: ignore[arg-type]
            )
        )
    return entries


def _field_labels(session: Session, events: Sequence[AuditEvent]) -> dict[str, str]:
    """ "fields.<key>" -> the custom field's label as it is now, for the record edits among `events`."""
    keys = {
        str(field).removeprefix(CUSTOM_PREFIX)
        for event in events
        if event.action in ("contact.updated", "contact.created")
        for field in _detail(event).get("fields") or []
        if str(field).startswith(CUSTOM_PREFIX)
    }
    if not keys:
        return {}
    found = session.execute(select(ContactField.key, ContactField.label).where(ContactField.key.in_(sorted(keys))))
    return {CUSTOM_PREFIX + key: label for key, label in found}


def _field_words(field: str) -> str:
    """A standard field's API name as words ("owner_id" -> "owner"); a deleted custom field by its key."""
    return field.removeprefix(CUSTOM_PREFIX).replace("_id", "").replace("_", " ")


for _name, _in_conversations in (("conversation", _conversations), ("status", _statuses), ("note", _notes)):
    register_conversation_source(_name, _in_conversations)
for _name, _source in (
    ("stage", _stages),
    ("consent", _consent),
    ("record", _record),
):
    register_source(_name, _source)
