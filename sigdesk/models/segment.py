"""Segments: saved contact filters, shared with the team (sigdesk.segments compiles their definition).

The definition is stored as JSON text, so broadcasts and automation read the same filter the Contacts
page shows. Names are unique whatever their case, through `name_key` as tags and stages do.

The indexes on contacts below serve the filters and sorts of the contacts list (last contact time, last
edit); they are declared here, next to the migration that adds them (0016), so the contact model stays its
feature's. Custom values' covering indexes are the custom field model's own (0015).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import MYSQL_TABLE_OPTIONS, Base, UTCDateTime, utcnow
from sigdesk.models.contact import Contact


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("name_key", name="uq_segments_name_key"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    definition: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


CONTACT_INDEXES = (
    Index("ix_contacts_last_inbound_at", Contact.__table__.c.last_inbound_at),
    Index("ix_contacts_last_outbound_at", Contact.__table__.c.last_outbound_at),
    Index("ix_contacts_updated_at", Contact.__table__.c.updated_at),
)
