"""What the conversation commands do to the rows: assignment, status and snooze, notes and the activity history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sigdesk.db import utcnow
from sigdesk.errors import NotFound, UserError
from sigdesk.models import Conversation, ConversationStatus, Message, Note, User

STATUSES = tuple(status.value for status in ConversationStatus)
MAX_NOTE = 10_000
# Notices about other messages (an edit, a deletion, a reaction): stored as rows, but not messages of their own.
NOTICE_TYPES = ("edit", "revoke", "reaction")


def assign(session: Session, conversation: Conversation, assignee_id: int | None) -> int | None:
    """Hand the conversation to a team member (or to nobody); returns who had it before."""
    if assignee_id is not None:
        user = session.get(User, assignee_id)
        if user is None or not user.is_active:
            raise UserError("There is no active team member with that id", field="assignee_id")
    previous = conversation.assignee_id
    conversation.assignee_id = assignee_id
    session.flush()
    return previous


def set_status(
    session: Session,
    conversation: Conversation,
    status: str,
    snoozed_until: datetime | None = None,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    if status not in STATUSES:
        raise UserError(f"Status must be one of {', '.join(STATUSES)}", field="status")
    if status == ConversationStatus.SNOOZED.value:
        if snoozed_until is None:
            raise UserError("Say until when to snooze the conversation", field="snoozed_until")
        if snoozed_until.tzinfo is None:
            raise UserError("The snooze time needs a time zone", field="snoozed_until")
        if snoozed_until <= now:
            raise UserError("The snooze time is in the past; choose a later time", field="snoozed_until")
        conversation.snoozed_until = snoozed_until
    else:
        conversation.snoozed_until = None
    conversation.status = status
    session.flush()


def reopen_snoozed(session: Session, now: datetime | None = None) -> list[tuple[int, int | None]]:
    """Snoozed conversations whose time has come are open again; (id, assignee) of each."""
    now = now or utcnow()
    due = session.execute(
        select(Conversation.id, Conversation.assignee_id).where(
            Conversation.status == ConversationStatus.SNOOZED.value, Conversation.snoozed_until <= now
        )
    ).all()
    if due:
        session.execute(
            update(Conversation)
            .where(
                Conversation.id.in_([row[0] for row in due]), Conversation.status == ConversationStatus.SNOOZED.value
            )
            .values(status=ConversationStatus.OPEN.value, snoozed_until=None)
        )
        session.add_all(
            [
                Note(
                    conversation_id=row[0],
                    author_id=None,
                    body="The snooze ended; the conversation is open again.",
                    kind="activity",
                    created_at=now,
                )
                for row in due
            ]
        )
        session.flush()
    return [(row[0], row[1]) for row in due]


def add_note(session: Session, conversation: Conversation, author: User, body: str) -> Note:
    text = (body or "").strip()
    if not text:
        raise UserError("A note needs some text", field="body")
    if len(text) > MAX_NOTE:
        raise UserError(f"Notes are limited to {MAX_NOTE} characters", field="body")
    note = Note(conversation_id=conversation.id, author_id=author.id, body=text, kind="note", created_at=utcnow())
    session.add(note)
    session.flush()
    return note


def record_activity(session: Session, conversation: Conversation, actor: User | None, text: str) -> Note:
    """A line in the thread and the side panel's history: who assigned, resolved or snoozed, and when."""
    note = Note(
        conversation_id=conversation.id,
        author_id=actor.id if actor else None,
        body=text[:MAX_NOTE],
        kind="activity",
        created_at=utcnow(),
    )
    session.add(note)
    session.flush()
    return note


def history(session: Session, conversation: Conversation, limit: int = 20) -> list[Note]:
    return list(
        session.scalars(
            select(Note)
            .where(Note.conversation_id == conversation.id, Note.kind == "activity")
            .order_by(Note.created_at.desc(), Note.id.desc())
            .limit(limit)
        )
    )


def message_count(session: Session, conversation: Conversation) -> int:
    """The messages the thread shows; edits, deletions and reactions are notices about them, not more messages."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.conversation_id == conversation.id, Message.type.not_in(NOTICE_TYPES))
        )
        or 0
    )


def get_note(session: Session, conversation: Conversation, note_id: int) -> Note:
    note = session.get(Note, note_id)
    if note is None or note.conversation_id != conversation.id:
        raise NotFound("No such note in this conversation", field="note_id")
    return note
