"""Exports of the business's data as JSON Lines or CSV, streamed so size never costs memory.

Each export is a fixed, documented list of columns (not the raw tables): what a person or another
tool needs, without queue bookkeeping. Times are ISO 8601 in UTC. CSV may start with the BOM that
Excel needs to read UTF-8; "all" zips one file per kind.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import DateTime, func, select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.contacts.services import COLUMNS as CONTACT_COLUMNS
from sigdesk.contacts.services import FIELDS as CONTACT_FIELDS
from sigdesk.contacts.services import ContactData
from sigdesk.db import Database, UTCDateTime, write_lock
from sigdesk.events.catalogue import ExportFinished
from sigdesk.events.outbox import record
from sigdesk.models import AuditEvent, Contact, Conversation, Message, Template

BATCH = 2000
FORMATS = ("json", "csv")

KINDS: dict[str, tuple[type, tuple[str, ...]]] = {
    "contacts": (Contact, CONTACT_FIELDS),
    "conversations": (
        Conversation,
        (
            "id",
            "contact_id",
            "status",
            "assignee_id",
            "last_message_at",
            "last_inbound_at",
            "unread_count",
            "created_at",
        ),
    ),
    "messages": (
        Message,
        (
            "id",
            "wamid",
            "conversation_id",
            "contact_id",
            "direction",
            "type",
            "text",
            "caption",
            "mime_type",
            "filename",
            "file_size",
            "storage_key",
            "media_state",
            "status",
            "error_code",
            "error_title",
            "reply_to_wamid",
            "forwarded",
            "details",
            "timestamp",
            "edited_at",
            "revoked_at",
        ),
    ),
    "templates": (
        Template,
        (
            "id",
            "name",
            "language",
            "meta_id",
            "category",
            "status",
            "quality",
            "components",
            "rejected_reason",
            "created_at",
            "updated_at",
        ),
    ),
    "audit": (AuditEvent, ("id", "at", "actor_id", "actor_email", "action", "target", "ip", "detail")),
}
# Kinds exported through their entity's one serializer rather than as columns: what is selected (id
# first), and the pydantic model whose of_row() makes the record; the kind's columns are its fields.
SERIALIZED: dict[str, tuple[tuple, Any]] = {"contacts": (CONTACT_COLUMNS, ContactData)}
NOT_YET = {"orders": "SigDesk has no orders yet, so there is nothing to export"}
WHAT = tuple(KINDS) + ("all",)

Progress = Callable[[int, int], None]


class ExportError(Exception):
    """The export cannot be made as asked; the message says why."""


def plain_values(values: dict[str, Any]) -> dict[str, Any]:
    """Times as ISO 8601 text, the rest as is: how exports write a record."""
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in values.items()}


def _is_time(schema: Any, field: str) -> bool:
    annotation = schema.model_fields[field].annotation
    return datetime in (annotation, *getattr(annotation, "__args__", ()))


def _datetime_columns(model, columns: tuple[str, ...]) -> list[int]:
    return [
        index for index, name in enumerate(columns) if isinstance(getattr(model, name).type, (DateTime, UTCDateTime))
    ]


def row_values(session: Session, kind: str) -> Iterator[list]:
    """Rows of one kind in id order as lists (times as ISO 8601 text), fetched in batches by key so memory stays flat."""
    model, columns = KINDS[kind]
    selected, schema = SERIALIZED.get(kind, (None, None))
    if schema is None:
        selected = [getattr(model, name) for name in columns]
        times = _datetime_columns(model, columns)
    else:
        times = [index for index, name in enumerate(columns) if _is_time(schema, name)]
    last = None
    while True:
        query = select(*selected).order_by(model.id).limit(BATCH)
        if last is not None:
            query = query.where(model.id > last)
        batch = session.execute(query).all()
        if not batch:
            return
        for row in batch:
            values = list(schema.of_row(row).model_dump().values()) if schema else list(row)
            for index in times:
                if values[index] is not None:
                    values[index] = values[index].isoformat()
            yield values
        last = batch[-1][0]


def rows(session: Session, kind: str) -> Iterator[dict]:
    columns = KINDS[kind][1]
    for values in row_values(session, kind):
        yield dict(zip(columns, values))


def count(session: Session, kind: str) -> int:
    model, _columns = KINDS[kind]
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def write_kind(
    session: Session, kind: str, fmt: str, sink: BinaryIO, bom: bool = False, tick: Callable[[], None] | None = None
) -> int:
    _, columns = KINDS[kind]
    text = io.TextIOWrapper(
        sink, encoding="utf-8-sig" if bom and fmt == "csv" else "utf-8", newline="", write_through=False
    )
    written = 0
    try:
        if fmt == "csv":
            writer = csv.writer(text)
            writer.writerow(columns)
            for values in row_values(session, kind):
                writer.writerow(["" if value is None else value for value in values])
                written += 1
                if tick:
                    tick()
        else:
            text.flush()
            for values in row_values(session, kind):
                sink.write(orjson.dumps(dict(zip(columns, values))) + b"\n")
                written += 1
                if tick:
                    tick()
        text.flush()
    finally:
        text.detach()
    return written


def export(
    session: Session, what: str, fmt: str, out_path: Path, bom: bool = False, progress: Progress | None = None
) -> dict[str, int]:
    """Write the export to out_path (a .zip for "all"); returns rows written per kind. Never overwrites."""
    if what in NOT_YET:
        raise ExportError(NOT_YET[what])
    if what not in WHAT:
        raise ExportError(f"Unknown export {what!r}; choose one of {', '.join(WHAT)}")
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose json or csv")
    out_path = Path(out_path)
    if out_path.exists():
        raise ExportError(f"{out_path} already exists; choose another file name")
    if not out_path.parent.is_dir():
        raise ExportError(f"The folder {out_path.parent} does not exist")
    kinds = list(KINDS) if what == "all" else [what]
    total = sum(count(session, kind) for kind in kinds)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress and (done % 1000 == 0 or done == total):
            progress(done, total)

    partial = out_path.with_name(out_path.name + ".partial")
    written: dict[str, int] = {}
    try:
        with open(partial, "wb") as handle:
            if what == "all":
                with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    for kind in kinds:
                        name = f"{kind}.{'jsonl' if fmt == 'json' else 'csv'}"
                        with archive.open(name, "w", force_zip64=True) as member:
                            written[kind] = write_kind(session, kind, fmt, member, bom, tick)
            else:
                written[what] = write_kind(session, what, fmt, handle, bom, tick)
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if progress:
        progress(total, total)
    return written


def run(
    database: Database,
    actor: Actor,
    what: str,
    fmt: str,
    out_path: Path,
    bom: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """An export as a command, for the Exports page and `sigdesk export` alike: written from a read-only
    session (no write lock while it streams), then audited and recorded as export.finished."""
    with database.session(write=False) as session:
        written = export(session, what, fmt, out_path, bom, progress)
    rows = sum(written.values())
    with write_lock(database.engine), database.session() as session:
        record_by(session, actor, "export.run", what, {"format": fmt, "rows": rows})
        record(session, ExportFinished(what, fmt, rows, {"rows_by_kind": written}))
    return written
