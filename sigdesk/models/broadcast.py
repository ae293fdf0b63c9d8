"""Broadcasts: one approved template sent to a frozen audience, paced inside Meta's limits.

Each recipient is one row whose `state` only moves forward (RECIPIENT_RANK), so a crash, a redelivered
status webhook or two workers can never send anyone the same broadcast twice or move a result back.
The unique (broadcast_id, wa_id) key is the promise that one person is in one broadcast once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime, utcnow
from sigdesk.models.columns import BigText

# A campaign's life: a draft is edited; scheduled waits for its time; running sends; paused waits for a
# person (or, with pause_kind "limit", for the 24-hour messaging limit to free up); the last two are final.
BROADCAST_STATUSES = ("draft", "scheduled", "running", "paused", "completed", "cancelled")
FINAL_STATUSES = ("completed", "cancelled")
# Why a campaign is paused: a person; the 24-hour messaging limit (resumes by itself at resume_at); Meta
# (quality: 131048, a paused or disabled template; access: a revoked token); an error the owner must see.
PAUSE_KINDS = ("person", "limit", "quality", "access", "template")

# A recipient's states. "sending": its message exists and is queued or in flight; "unknown": SigDesk
# stopped while the call to Meta was in flight, so it may or may not have arrived and is never resent
# automatically (a status webhook for it still moves it on). Failed, skipped and unknown are final
# apart from that; the rank says which moves are forward.
# The one move back: Meta's failed status webhook with 131049 (per-user marketing limit) says Meta did not
# deliver that message, so the recipient goes back to pending (message_id cleared, attempts + 1,
# next_attempt_at at the next retry interval) and gets a new message later; nobody can get it twice. It is
# one UPDATE guarded by the held-back message_id and state sending/unknown/sent (sigdesk/broadcasts/
# followers.py); after the last retry the recipient fails with Meta's reason. A completed campaign runs
# again for such a retry (commands.reopen_by_system); a cancelled one does not.
RECIPIENT_STATES = ("pending", "sending", "sent", "delivered", "read", "replied", "failed", "skipped", "unknown")
RECIPIENT_RANK = {
    "pending": 0,
    "sending": 1,
    "unknown": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "replied": 6,
    "failed": 7,
    "skipped": 7,
}


class Broadcast(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status_scheduled_at", "status", "scheduled_at"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # The template as chosen; name, language and category are copied so a template deleted at Meta (or
    # re-synced) still says what the campaign sent.
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"), default=None)
    template_name: Mapped[str] = mapped_column(String(255))
    template_language: Mapped[str] = mapped_column(String(32))
    template_category: Mapped[str | None] = mapped_column(String(32), default=None)
    # {"1": "{contact.name|there}", ...} per component: {"body": {...}, "header": {...}, "button_0": {...}}
    variables: Mapped[str | None] = mapped_column(Text, default=None)
    # {"segment_id": 3} | {"contact_ids": [...]} | {"import_id": 7}; frozen into recipients at start.
    audience: Mapped[str | None] = mapped_column(BigText, default=None)
    rate_per_second: Mapped[int] = mapped_column(Integer, default=20)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    pause_kind: Mapped[str | None] = mapped_column(String(16), default=None)
    pause_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # When a campaign paused by the messaging limit may go on by itself.
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)


class BroadcastRecipient(Base):
    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "wa_id", name="uq_broadcast_recipients_broadcast_id_wa_id"),
        Index("ix_broadcast_recipients_broadcast_id_state_id", "broadcast_id", "state", "id"),
        Index("ix_broadcast_recipients_contact_id_sent_at", "contact_id", "sent_at"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # The normalised number (E.164 digits, Meta's wa_id) the recipient was frozen with.
    wa_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # Why skipped or failed, in words; Meta's code beside it when Meta said no.
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    error_code: Mapped[int | None] = mapped_column(Integer, default=None)
    message_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Not before this (a pair-rate or per-user marketing limit retry).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reply_message_id: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
