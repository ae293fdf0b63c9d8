from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime, utcnow
from sigdesk.models.columns import BigText


class Template(Base):
    """A message template as Meta knows it; webhooks keep status, quality and category current."""

    __tablename__ = "templates"
    __table_args__ = (
        UniqueConstraint("name", "language", name="uq_templates_name_language"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(32))
    meta_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    category: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str | None] = mapped_column(String(32), default=None)
    quality: Mapped[str | None] = mapped_column(String(32), default=None)
    components: Mapped[str | None] = mapped_column(BigText, default=None)
    rejected_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
