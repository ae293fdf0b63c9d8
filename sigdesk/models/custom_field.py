"""Fields the business adds to its contacts (admins define them), and each contact's values.

A value is one row per contact and field, typed by the field's kind so filters and sorts use an index:
text, link, single choice and multiple choice (a JSON list) in `text_value`; number, currency amount
and yes/no (1 or 0) in `number_value` (a DOUBLE: MariaDB's FLOAT would lose an amount's cents); dates in
`date_value`. A contact without a value has no row.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Double, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import MYSQL_TABLE_OPTIONS, Base, UTCDateTime, utcnow

# The kinds a field can be, by the word the API and the pages use.
FIELD_KINDS = ("text", "number", "currency", "date", "boolean", "choice", "choices", "link")
TEXT_VALUE_LENGTH = 500


class ContactField(Base):
    """A field definition. `key` is how the API, imports and filters name it (lower case, stable);
    `label` is what people read. `options` is a JSON list of the choices; `currency` an ISO 4217 code."""

    __tablename__ = "contact_fields"
    __table_args__ = (UniqueConstraint("key", name="uq_contact_fields_key"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    pattern: Mapped[str | None] = mapped_column(String(255), default=None)
    options: Mapped[str | None] = mapped_column(Text, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactFieldValue(Base):
    __tablename__ = "contact_field_values"
    # contact_id last: a filter or count on a value reads the index alone (SQLite's indexes hold the rowid,
    # not this table's key; InnoDB's hold the key anyway). Values of one contact are found by the primary key.
    __table_args__ = (
        Index("ix_contact_field_values_field_text", "field_id", "text_value", "contact_id"),
        Index("ix_contact_field_values_field_number", "field_id", "number_value", "contact_id"),
        Index("ix_contact_field_values_field_date", "field_id", "date_value", "contact_id"),
        MYSQL_TABLE_OPTIONS,
    )

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("contact_fields.id", ondelete="CASCADE"), primary_key=True)
    text_value: Mapped[str | None] = mapped_column(String(TEXT_VALUE_LENGTH), default=None)
    number_value: Mapped[float | None] = mapped_column(Double, default=None)
    date_value: Mapped[date | None] = mapped_column(Date, default=None)
