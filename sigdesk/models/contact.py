from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, UTCDateTime, utcnow


class Contact(Base):
    """A customer. Meta may know them by phone (wa_id), by business-scoped user_id, or both."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    wa_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    user_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    profile_name: Mapped[str | None] = mapped_column(String(255), default=None)
    display_name: Mapped[str | None] = mapped_column(String(255), default=None)
    opted_out_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # opted_in, opted_out or unknown: the latest consent_events word, kept here by record_consent.
    marketing_consent: Mapped[str] = mapped_column(String(16), default="unknown", server_default="unknown", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The record the business keeps (sigdesk.contacts.commands validates every value).
    email: Mapped[str | None] = mapped_column(String(254), index=True, default=None)
    company: Mapped[str | None] = mapped_column(String(255), default=None)
    city: Mapped[str | None] = mapped_column(String(255), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    language: Mapped[str | None] = mapped_column(String(35), default=None)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    # A user's id. No foreign key: SQLite could add one only by copying the table (see migration 0012);
    # users are deactivated, never deleted, and the commands accept only active users.
    owner_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    # When a person (or the API, or an import) last changed the record; message traffic does not count.
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    first_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    first_outbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_outbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The lead score (0-100; None: not scored yet) and its reasons as a JSON list, kept by sigdesk.lead_score;
    # replied_within_day_at: when the customer first answered a business message within 24 hours.
    lead_score: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    lead_score_reasons: Mapped[str | None] = mapped_column(Text, default=None)
    replied_within_day_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def name(self) -> str:
        return self.display_name or self.profile_name or self.wa_id or self.user_id or f"Contact {self.id}"
