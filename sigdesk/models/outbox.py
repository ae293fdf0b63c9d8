from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, UTCDateTime, utcnow

# SQLite gives INTEGER PRIMARY KEY its rowid; MySQL needs BIGINT for an ever-growing log.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class OutboxEvent(Base):
    """Domain events in commit order, kept until every consumer has read them (see sigdesk.events.outbox)."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    name: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)


class OutboxCursor(Base):
    """How far each background consumer has read the outbox."""

    __tablename__ = "outbox_cursors"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
