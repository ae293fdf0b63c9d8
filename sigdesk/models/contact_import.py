"""Imports (contacts, products, orders): one row per uploaded file and its run (import_jobs), what each touched contact was before
(import_changes, so the whole import can be undone), and the rows it refused (import_rejections, for the
error report). The worker keeps a job's counts up to date as it goes, so a page can show the progress."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import MYSQL_TABLE_OPTIONS, Base, UTCDateTime, utcnow


class ImportJob(Base):
    """An import: the file as uploaded (kept in the data dir's private imports folder until it finishes),
    how its columns map to contact fields (`mapping`: JSON list of [column index, header, field]), and
    where the run is: queued, running, done, failed, undoing or undone, with its counts. An undo is worked
    through by the worker like the import: `undo_cursor` is the last import_changes id undone (committed
    with each batch, so a stopped undo carries on where it was), `undo_total` / `undo_processed` its
    progress, and deleted / restored / kept what it did so far."""

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_state_id", "state", "id"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str | None] = mapped_column(String(255), default=None)
    format: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[str | None] = mapped_column(String(32), default=None)
    delimiter: Mapped[str | None] = mapped_column(String(4), default=None)
    headers: Mapped[str] = mapped_column(Text)
    mapping: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(8))
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    consent_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_source: Mapped[str | None] = mapped_column(String(500), default=None)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    total: Mapped[int | None] = mapped_column(Integer, default=None)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    undo_total: Mapped[int | None] = mapped_column(Integer, default=None)
    undo_processed: Mapped[int] = mapped_column(Integer, default=0)
    undo_cursor: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    restored: Mapped[int] = mapped_column(Integer, default=0)
    kept: Mapped[int] = mapped_column(Integer, default=0)
    # What the file holds (contacts, products, orders: sigdesk.imports.kinds) and that kind's options (JSON).
    kind: Mapped[str] = mapped_column(String(16), default="contacts", server_default="contacts")
    options: Mapped[str | None] = mapped_column(Text, default=None)
    # Orders: the lines written and the contacts created by phone; undo: the orders or products it removed.
    lines: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    contacts_created: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    removed: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ImportChange(Base):
    """A contact an import created or updated. `previous` (JSON) is what undo puts back: the columns the
    import changed as they were, the stage, and the consent state; `added` (JSON) what it added on top
    (tag ids, custom field ids, the consent event's id). A merge moves these rows to the contact it kept
    (sigdesk.imports.commands.move_changes); `previous` {"merged": true} marks a created contact merged
    into one that was there, which undo keeps."""

    __tablename__ = "import_changes"
    __table_args__ = (Index("ix_import_changes_job_id_contact_id", "job_id", "contact_id"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(Integer)
    created: Mapped[bool] = mapped_column(Boolean, default=False)
    previous: Mapped[str | None] = mapped_column(Text, default=None)
    added: Mapped[str | None] = mapped_column(Text, default=None)


class ImportRejection(Base):
    """A row the import refused: its line in the file, why, and its cells (JSON list) for the error report."""

    __tablename__ = "import_rejections"
    __table_args__ = (Index("ix_import_rejections_job_id_line", "job_id", "line"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(String(500))
    cells: Mapped[str] = mapped_column(Text)


class ImportRecord(Base):
    """A product or an order an import wrote (`record_id`: its id in the kind's table), for undo: `created`
    rows are deleted, the others get `previous` (JSON of the columns as they were) back. Contacts keep
    their own import_changes, which merges and erasure maintain."""

    __tablename__ = "import_records"
    __table_args__ = (Index("ix_import_records_job_id_id", "job_id", "id"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(Integer)
    created: Mapped[bool] = mapped_column(Boolean, default=True)
    previous: Mapped[str | None] = mapped_column(Text, default=None)
