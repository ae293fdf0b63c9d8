"""What describes a customer beyond their record: tags (many per contact) and the lifecycle stage (one at a time,
with every change kept so the stage history and time in each stage can be shown).

Names are unique whatever their case: `name_key` holds a digest of the case-folded name, so the unique key
means the same on SQLite and on MySQL, whose collation would otherwise also fold accents.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime, utcnow


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("name_key", name="uq_tags_name_key"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    color: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactTag(Base):
    __tablename__ = "contact_tags"
    __table_args__ = (
        Index("ix_contact_tags_tag_id_contact_id", "tag_id", "contact_id"),
        MYSQL_TABLE_OPTIONS,
    )

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Stage(Base):
    """A step of the lifecycle; `position` orders them (1 first)."""

    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("name_key", name="uq_stages_name_key"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactStage(Base):
    """A contact's current stage: at most one, by the primary key."""

    __tablename__ = "contact_stages"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"), index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StageChange(Base):
    """One entry of a contact's stage history: the stage entered (None: left without a new one), who, when.

    The stage's name is kept as it was, so the history still reads after a stage is renamed or deleted.
    """

    __tablename__ = "stage_changes"
    __table_args__ = (
        Index("ix_stage_changes_contact_id_changed_at", "contact_id", "changed_at"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id", ondelete="SET NULL"), index=True, default=None)
    stage_name: Mapped[str | None] = mapped_column(String(64), default=None)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
