"""The relay's own tables, on their own metadata: the relay database never holds CRM data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, MetaData, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sigdesk.db import MYSQL_TABLE_OPTIONS, NAMING_CONVENTION, UTCDateTime, utcnow

# SQLite only auto-numbers an INTEGER PRIMARY KEY; BIGINT elsewhere so sequence numbers never run out.
Sequence = BigInteger().with_variant(Integer(), "sqlite")
Body = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class RelayBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Install(RelayBase):
    """One SigDesk installation: its webhook address, and the hashes of the secrets it was given."""

    __tablename__ = "relay_installs"
    __table_args__ = MYSQL_TABLE_OPTIONS

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # An address, not a credential: it only lets someone post events, which the desktop verifies.
    hook_path: Mapped[str] = mapped_column(String(64), unique=True)
    verify_hash: Mapped[str] = mapped_column(String(64))
    pairing_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    pairing_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    acked_seq: Mapped[int] = mapped_column(Sequence, default=0)
    stored_events: Mapped[int] = mapped_column(Integer, default=0)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    max_events: Mapped[int] = mapped_column(Integer)
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_delivery_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Event(RelayBase):
    """One delivery exactly as Meta sent it: raw bytes and signature header, never parsed."""

    __tablename__ = "relay_events"
    # AUTOINCREMENT: SQLite must never hand out a purged sequence number again (desktops dedupe on it).
    __table_args__ = (
        Index("ix_relay_events_install_id_seq", "install_id", "seq"),
        {**MYSQL_TABLE_OPTIONS, "sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(Sequence, primary_key=True, autoincrement=True)
    install_id: Mapped[int] = mapped_column(ForeignKey("relay_installs.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    size: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str | None] = mapped_column(String(200), default=None)
    body: Mapped[bytes] = mapped_column(Body)
