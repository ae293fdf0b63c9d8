"""Merged contacts and pairs people said are not duplicates.

`contact_merges` keeps what a merge did so it can be described afterwards: who (`actor_id`) merged which
record (`merged_id`, gone, so no foreign key; `snapshot` holds its fields as they were) into which
(`into_id`), and which values won (`picks`). `kept_id` is the record that holds that history now: when
the kept record is itself merged later, its merges follow it. The rows go with the contact that holds them.

`contact_duplicate_dismissals` holds the pairs (smaller id first) that are not duplicates, so they stop
being suggested; a pair goes when either contact does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import MYSQL_TABLE_OPTIONS, Base, UTCDateTime, utcnow


class ContactMerge(Base):
    __tablename__ = "contact_merges"
    __table_args__ = (
        Index("ix_contact_merges_kept_id_created_at", "kept_id", "created_at"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kept_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    into_id: Mapped[int] = mapped_column(Integer)
    merged_id: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[str] = mapped_column(Text)
    picks: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DuplicateDismissal(Base):
    __tablename__ = "contact_duplicate_dismissals"
    __table_args__ = (
        Index("ix_contact_duplicate_dismissals_high_id", "high_id"),
        MYSQL_TABLE_OPTIONS,
    )

    low_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    high_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
