"""Conversation labels: what a conversation is about (tags describe the customer; labels the conversation)."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sigdesk.db import flush_unique, utcnow
from sigdesk.errors import Conflict, NotFound, UserError
from sigdesk.models import Conversation, ConversationLabel, Label

MAX_LABEL = 64
LABEL_COLORS = 8


def list_labels(session: Session) -> list[Label]:
    return list(session.scalars(select(Label).order_by(Label.name)))


def labels_of(session: Session, conversation: Conversation) -> list[Label]:
    return list(
        session.scalars(
            select(Label)
            .join(ConversationLabel, ConversationLabel.label_id == Label.id)
            .where(ConversationLabel.conversation_id == conversation.id)
            .order_by(Label.name)
        )
    )


def create_label(session: Session, name: str, color: int | None = None) -> Label:
    name = (name or "").strip()
    if not name or len(name) > MAX_LABEL:
        raise UserError(f"A label name is 1 to {MAX_LABEL} characters", field="name")
    if session.scalar(select(Label.id).where(Label.name == name)) is not None:
        raise Conflict(f"There already is a label '{name}'")
    count = session.scalar(select(func.count()).select_from(Label)) or 0
    label = Label(name=name, color=(color if color is not None else count) % LABEL_COLORS, created_at=utcnow())
    session.add(label)
    flush_unique(session, f"There already is a label '{name}'")
    return label


def delete_label(session: Session, label_id: int) -> None:
    label = session.get(Label, label_id)
    if label is None:
        raise NotFound("No such label", field="label_id")
    session.execute(delete(ConversationLabel).where(ConversationLabel.label_id == label_id))
    session.delete(label)
    session.flush()


def set_label(session: Session, conversation: Conversation, label_id: int, on: bool) -> bool:
    """Put a label on a conversation or take it off; False when it already was so."""
    if session.get(Label, label_id) is None:
        raise NotFound("No such label", field="label_id")
    exists = session.get(ConversationLabel, (conversation.id, label_id))
    if on and exists is None:
        session.add(ConversationLabel(conversation_id=conversation.id, label_id=label_id, created_at=utcnow()))
    elif not on and exists is not None:
        session.delete(exists)
    else:
        return False
    session.flush()
    return True
