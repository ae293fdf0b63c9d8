"""Marketing consent as the customer gave or withdrew it: one row per word, never edited.

The contact's current state is denormalised on `contacts.marketing_consent` by the command that
records the word (sigdesk.consent.commands.record_consent), so lists read it without a join.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import MYSQL_TABLE_OPTIONS, Base, UTCDateTime, utcnow


class ConsentEvent(Base):
    """A customer's opt-in or opt-out: what they said (`evidence`), where (`source`), when (`at`), and who
    recorded it (`actor_id`, `token_id`, `channel`). `message_id` ties a word to the message that carried
    it (a STOP keyword, a send refused with 131050), and is unique so a redelivered event records once."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_contact_id_at_id", "contact_id", "at", "id"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str | None] = mapped_column(String(1000), default=None)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True, default=None
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    token_id: Mapped[int | None] = mapped_column(default=None)
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
