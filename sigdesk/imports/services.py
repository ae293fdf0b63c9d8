"""Contact imports' storage and read model: where uploads are kept, a job as pages and the API show it,
and the report of the rows an import refused.

Uploads are kept in the data dir's own private folder for imports (`imports/`, 0700; each file 0600),
not the exports' folder, whose leftovers are deleted at every start: a queued import must survive a
restart. A job's upload is deleted when it finishes; uploads never started are deleted after a day.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sigdesk.db import utcnow
from sigdesk.errors import NotFound, UserError
from sigdesk.exports.services import create_private, safe_cell
from sigdesk.imports.reading import format_of
from sigdesk.models import ImportJob, ImportRejection

PRIVATE_DIR = "imports"
MAX_UPLOAD = 50 * 1024 * 1024
CHUNK = 256 * 1024
STALE_UPLOAD_SECONDS = 24 * 3600
REJECTIONS_KEPT = timedelta(days=30)
_STORED = re.compile(r"upload-[0-9a-f]{24}\.(csv|xlsx)")
STATES = ("queued", "running", "done", "failed", "undoing", "undone")
MODES = ("create", "update", "upsert")


def private_dir(data_dir: Path) -> Path:
    """The data dir's folder for uploaded contact files (0700), created when missing."""
    folder = Path(data_dir) / PRIVATE_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def too_large_message(limit: int = MAX_UPLOAD) -> str:
    return f"The file is larger than the {limit // (1024 * 1024)} MB limit for imports: split it into smaller files"


def save_upload(data_dir: Path, source: BinaryIO, file_name: str, limit: int = MAX_UPLOAD) -> str:
    """Copy an upload (or a file the CLI was given) into the private folder under a random name, refusing
    more than `limit` bytes; returns the stored name, which start_import takes."""
    fmt = format_of(file_name)
    stored = f"upload-{secrets.token_hex(12)}.{fmt}"
    path = private_dir(data_dir) / stored
    written = 0
    try:
        with create_private(path) as target:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise UserError(too_large_message(limit), status=413, field="file")
                target.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return stored


def stored_path(data_dir: Path, stored: str) -> Path:
    """The path of an upload by its stored name; anything that is not such a name is refused."""
    if not isinstance(stored, str) or not _STORED.fullmatch(stored):
        raise UserError("Upload the file again: this upload is unknown", field="file")
    path = private_dir(data_dir) / stored
    if not path.is_file():
        raise UserError("Upload the file again: this upload has expired", field="file")
    return path


def purge_old_rejections(session: Session, now: datetime | None = None) -> int:
    """Delete the refused rows (their raw cells are personal data) of imports that finished more than
    REJECTIONS_KEPT (30 days) ago: the upload itself is deleted when its import finishes, and the error
    report is only needed for fixing and re-importing the file soon after. Runs at the worker's start and
    after every import the worker finishes; the caller commits."""
    cutoff = (now or utcnow()) - REJECTIONS_KEPT
    old = select(ImportJob.id).where(
        ImportJob.finished_at.is_not(None),
        ImportJob.finished_at < cutoff,
        ImportJob.state.not_in(("queued", "running")),
    )
    ids = list(session.scalars(old))
    if not ids:
        return 0
    return session.execute(
        delete(ImportRejection).where(ImportRejection.job_id.in_(ids)).execution_options(synchronize_session=False)
    ).rowcount


def clear_stale_uploads(session: Session, data_dir: Path) -> int:
    """Delete uploads older than a day that no queued or running job reads (a mapping page left), and the
    refused rows of imports finished more than 30 days ago (purge_old_rejections)."""
    purge_old_rejections(session)
    folder = Path(data_dir) / PRIVATE_DIR
    if not folder.is_dir():
        return 0
    kept = set(session.scalars(select(ImportJob.stored_path).where(ImportJob.state.in_(("queued", "running")))))
    removed = 0
    now = time.time()
    for item in folder.iterdir():
        if item.name in kept or not item.is_file():
            continue
        if now - item.stat().st_mtime > STALE_UPLOAD_SECONDS:
            item.unlink(missing_ok=True)
            removed += 1
    return removed


class ImportData(BaseModel):
    """An import as the page and the API show it: where it is, and what it did so far."""

    id: int
    kind: Literal["contacts", "products", "orders"] = Field(description="What the file holds")
    file_name: str
    format: Literal["csv", "xlsx"]
    encoding: str | None = Field(description="The text encoding read (CSV only)")
    mode: Literal["create", "update", "upsert"]
    country: str | None = Field(description="The country numbers without a country code were read in")
    consent_confirmed: bool
    state: Literal["queued", "running", "done", "failed", "undoing", "undone"] = Field(
        description="undoing: the worker is taking the import back (see undo_processed of undo_total)"
    )
    total: int | None = Field(description="Rows in the file below its header; null until counted")
    processed: int
    created: int
    updated: int
    rejected: int
    error: str | None = Field(description="Why the import stopped, when it failed")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    undone_at: datetime | None
    undo_total: int | None = Field(description="Contacts the undo goes through; null until an undo is asked for")
    undo_processed: int = Field(description="Contacts the undo has gone through so far")
    deleted: int = Field(description="Contacts the import created that the undo deleted")
    restored: int = Field(description="Contacts the import updated that the undo put back as they were")
    kept: int = Field(description="Contacts the import created that the undo kept (conversations since, or merged)")
    lines: int = Field(description="Orders imports: the order lines written (created counts the orders)")
    contacts_created: int = Field(description="Orders imports: the contacts created for new phone numbers")
    removed: int = Field(description="Orders or products the undo deleted or put back")

    @classmethod
    def of(cls, job: ImportJob) -> "ImportData":
        return cls(
            id=job.id,
            kind=job.kind or "contacts",  # type: ignore[arg-type]
            file_name=job.file_name,
            format=job.format,  # type: ignore[arg-type]
            encoding=job.encoding,
            mode=job.mode,  # type: ignore[arg-type]
            country=job.country,
            consent_confirmed=bool(job.consent_confirmed),
            state=job.state,  # type: ignore[arg-type]
            total=job.total,
            processed=job.processed,
            created=job.created,
            updated=job.updated,
            rejected=job.rejected,
            error=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            undone_at=job.undone_at,
            undo_total=job.undo_total,
            undo_processed=job.undo_processed or 0,
            deleted=job.deleted or 0,
            restored=job.restored or 0,
            kept=job.kept or 0,
            lines=job.lines or 0,
            contacts_created=job.contacts_created or 0,
            removed=job.removed or 0,
        )


def get_job(session: Session, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"There is no import {job_id}", field="import_id")
    return job


def recent_jobs(session: Session, limit: int = 20) -> list[ImportJob]:
    return list(session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)))


def _rejections(session: Session, job: ImportJob) -> Iterator[tuple[int, str, list[str]]]:
    last = 0
    while True:
        batch = session.execute(
            select(ImportRejection.id, ImportRejection.line, ImportRejection.error, ImportRejection.cells)
            .where(ImportRejection.job_id == job.id, ImportRejection.id > last)
            .order_by(ImportRejection.id)
            .limit(1000)
        ).all()
        if not batch:
            return
        for row_id, line, error, cells in batch:
            yield line, error, json.loads(cells)
            last = row_id


def error_rows(session: Session, job: ImportJob) -> Iterator[list[str]]:
    """The error report's rows: the header (the file's columns, then `line` and `error`) and each refused
    row with its cells as read, every cell neutralised so a spreadsheet never runs it as a formula.
    A row longer than the header keeps its extra cells in columns "extra 1", "extra 2"... between the
    file's columns and `line` (the widest row is found by a first pass over the refused rows), so the
    report loses nothing of what was sent."""
    headers = json.loads(job.headers)
    width = len(headers)
    widest = width
    for _line, _error, cells in _rejections(session, job):
        if len(cells) > widest and any(str(cell).strip() for cell in cells[width:]):
            widest = max(widest, len(cells))
    extras = [f"extra {n}" for n in range(1, widest - width + 1)]
    yield [safe_cell(header) for header in headers] + extras + ["line", "error"]
    for line, error, cells in _rejections(session, job):
        values = (cells + [""] * widest)[:widest]
        yield [safe_cell(value) for value in values] + [line, safe_cell(error)]


def error_csv(session: Session, job: ImportJob) -> Iterator[bytes]:
    """The error report as CSV bytes (UTF-8 with the BOM Excel needs), a chunk at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff".encode()
    count = 0
    for row in error_rows(session, job):
        writer.writerow(row)
        count += 1
        if count % 500 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def streamed_error_csv(make_session: Callable[[], Session], job_id: int) -> Iterator[bytes]:
    """error_csv for a streamed response, in a session of its own: the request's session is closed at
    teardown, before the response's body is sent."""
    session = make_session()
    try:
        yield from error_csv(session, get_job(session, job_id))
    finally:
        session.close()


def errors_file_name(job: ImportJob) -> str:
    stem = Path(job.file_name).stem or "import"
    return f"{stem}-errors.csv"
