from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime, utcnow
from sigdesk.models.columns import BigText


class Direction(str, enum.Enum):
    IN = "in"
    OUT = "out"


class MediaState(str, enum.Enum):
    PENDING = "pending"
    READY = "ready"
    QUARANTINED = "quarantined"
    FAILED = "failed"


class MessageStatus(str, enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"


# A status only ever moves up this ladder; failed outranks everything, so it is terminal.
STATUS_RANK: dict[str, int] = {
    MessageStatus.QUEUED.value: 0,
    MessageStatus.SENDING.value: 1,
    MessageStatus.SENT.value: 2,
    MessageStatus.DELIVERED.value: 3,
    MessageStatus.READ.value: 4,
    MessageStatus.PLAYED.value: 5,
    MessageStatus.FAILED.value: 100,
}


class Message(Base):
    """One WhatsApp message in or out; `details` holds the type-specific part as JSON, `raw` Meta's copy."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_id_timestamp", "conversation_id", "timestamp"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_media_state_id", "media_state", "id"),  # the media fetcher's queue
        # broadcasts skip numbers Meta said cannot receive WhatsApp (131026), read per batch of contacts
        Index("ix_messages_contact_id_error_code", "contact_id", "error_code"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None only for outbound messages not yet accepted by Meta.
    wamid: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(BigText, default=None)
    caption: Mapped[str | None] = mapped_column(Text, default=None)
    media_id: Mapped[str | None] = mapped_column(String(128), default=None)
    mime_type: Mapped[str | None] = mapped_column(String(255), default=None)
    sha256: Mapped[str | None] = mapped_column(String(128), default=None)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    file_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    storage_key: Mapped[str | None] = mapped_column(String(255), default=None)
    media_state: Mapped[str | None] = mapped_column(String(16), default=None)
    details: Mapped[str | None] = mapped_column(BigText, default=None)
    reply_to_wamid: Mapped[str | None] = mapped_column(String(255), default=None)
    forwarded: Mapped[bool] = mapped_column(Boolean, default=False)
    frequently_forwarded: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str | None] = mapped_column(String(16), default=None)
    error_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error_title: Mapped[str | None] = mapped_column(String(255), default=None)
    error_explanation: Mapped[str | None] = mapped_column(Text, default=None)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    raw: Mapped[str | None] = mapped_column(BigText, default=None)
    # Outbound only: what we send, who wrote it, and the send queue's bookkeeping.
    client_ref: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    payload: Mapped[str | None] = mapped_column(BigText, default=None)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, default=None)
    # The broadcast that sent it: those are sent, paced, by the broadcast engine, not the inbox's sender.
    # No foreign key: SQLite could add one only by copying the messages table.
    broadcast_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)


class MessageStatusEvent(Base):
    """Every status Meta reported, once per (wamid, status); kept even before the message exists."""

    __tablename__ = "message_status_events"
    __table_args__ = (
        UniqueConstraint("wamid", "status", name="uq_message_status_events_wamid_status"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wamid: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    recipient_id: Mapped[str | None] = mapped_column(String(64), default=None)
    errors: Mapped[str | None] = mapped_column(Text, default=None)
    conversation: Mapped[str | None] = mapped_column(Text, default=None)
    pricing: Mapped[str | None] = mapped_column(Text, default=None)
    biz_opaque_callback_data: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reaction(Base):
    """A contact's current emoji on a message; emoji None means they took it back."""

    __tablename__ = "reactions"
    __table_args__ = (
        UniqueConstraint("target_wamid", "contact_id", name="uq_reactions_target_wamid_contact_id"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target_wamid: Mapped[str] = mapped_column(String(255))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    emoji: Mapped[str | None] = mapped_column(String(64), default=None)
    wamid: Mapped[str | None] = mapped_column(String(255), default=None)
    reacted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
