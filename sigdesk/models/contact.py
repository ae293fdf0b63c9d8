from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def name(self) -> str:
        return self.display_name or self.profile_name or self.wa_id or self.user_id or f"Contact {self.id}"
