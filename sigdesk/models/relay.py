from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
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


class RejectedDelivery(Base):
    """A delivery refused for its signature, kept as a digest and facts only, never its bytes.

    A relayed forgery used to be stored whole (up to 4 MB each) and forever; now only this is kept,
    capped in number and age (sigdesk.relay_client.receive). The (install, seq) of a relayed one
    lets a replay after the app secret was corrected store it properly."""

    __tablename__ = "rejected_deliveries"
    __table_args__ = (Index("ix_rejected_deliveries_install_seq", "install", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    install: Mapped[str | None] = mapped_column(String(32), default=None)
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
