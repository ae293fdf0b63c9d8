from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime, utcnow


class ConversationStatus(str, enum.Enum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Conversation(Base):
    """The one thread per contact; resolving closes it and the customer's next message reopens it."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_status_last_message_at", "status", "last_message_at"),
        Index("ix_conversations_last_message_at", "last_message_at"),
        Index("ix_conversations_assignee_id_status_last_message_at", "assignee_id", "status", "last_message_at"),
        Index("ix_conversations_unread_count_assignee_id", "unread_count", "assignee_id"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.OPEN.value)
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
