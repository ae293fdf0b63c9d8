"""What the team adds around WhatsApp conversations: private notes, labels and canned responses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime, utcnow


class Note(Base):
    """A private note in a conversation (or a line of its activity): shown to the team, never sent to WhatsApp."""

    __tablename__ = "notes"
    __table_args__ = (
        Index("ix_notes_conversation_id_created_at", "conversation_id", "created_at"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    body: Mapped[str] = mapped_column(Text)
    # "note" is written by a person; "activity" records an assignment or status change.
    kind: Mapped[str] = mapped_column(String(16), default="note")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("name", name="uq_labels_name"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationLabel(Base):
    __tablename__ = "conversation_labels"
    __table_args__ = (
        Index("ix_conversation_labels_label_id_conversation_id", "label_id", "conversation_id"),
        MYSQL_TABLE_OPTIONS,
    )

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CannedResponse(Base):
    """A reply agents insert by typing /shortcut; admins keep the list."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("shortcut", name="uq_canned_responses_shortcut"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
