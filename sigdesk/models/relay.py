from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, UTCDateTime, utcnow


class RelayReceipt(Base):
    """Which relay events are already stored here, so a redelivery (no ack arrived) is not stored twice."""

    __tablename__ = "relay_receipts"

    install: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="SET NULL"), index=True, default=None
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
