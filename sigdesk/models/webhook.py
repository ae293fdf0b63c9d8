from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, UTCDateTime, utcnow
from sigdesk.models.columns import BigBinary, BigText


class DeliveryState(str, enum.Enum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"
    QUARANTINED = "quarantined"


class DeliverySource(str, enum.Enum):
    DIRECT = "direct"
    RELAY = "relay"


class WebhookDelivery(Base):
    """The exact bytes Meta sent; Meta cannot resend a lost webhook, so this is the only copy."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16), default=DeliverySource.DIRECT.value)
    signature: Mapped[str | None] = mapped_column(String(100), default=None)
    raw: Mapped[bytes] = mapped_column(BigBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.RECEIVED.value, index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WebhookCounter(Base):
    """Tallies of refused webhook calls (bad signature, ...), which are not stored one by one."""

    __tablename__ = "webhook_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AccountEvent(Base):
    """account_update, calls and any webhook field SigDesk does not act on, shown to admins."""

    __tablename__ = "account_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    field: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str | None] = mapped_column(String(64), default=None)
    waba_id: Mapped[str | None] = mapped_column(String(64), default=None)
    payload: Mapped[str] = mapped_column(BigText)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="SET NULL"), index=True, default=None
    )
