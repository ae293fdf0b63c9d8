"""Exports of the business's data as JSON Lines or CSV, streamed so size never costs memory.

Each record is its entity's one serializer (sigdesk/<feature>/schemas.py): a JSON Lines record is what the
API answers for that contact, conversation, message or template. CSV flattens it: a nested object (a
conversation's contact, a message's media and error) becomes dotted columns (`contact.name`), a list or
free-form object (reactions, details, components) JSON text in its cell. Audit entries are written as the
audit log shows them. Times are ISO 8601 in UTC. CSV may start with the BOM that Excel needs to read UTF-8;
"all" zips one file per kind.
"""

from __future__ import annotations

import csv
import io
import os
import types
import typing
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import BaseModel
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import AuditData, record_by
from sigdesk.contacts.services import COLUMNS as CONTACT_COLUMNS
from sigdesk.contacts.services import ContactData
from sigdesk.conversations.schemas import MESSAGE_COLUMNS, ConversationData, MessageData
from sigdesk.conversations.services import reactions_for
from sigdesk.db import Database, write_lock
from sigdesk.events.catalogue import ExportFinished
from sigdesk.events.outbox import record
from sigdesk.message_templates.schemas import TemplateData
from sigdesk.models import AuditEvent, Contact, Conversation, Message, Template
from sigdesk.paging import in_key_order

BATCH = 2000
FORMATS = ("json", "csv")


def _messages(session: Session, batch: list[Row]) -> list[MessageData]:
    reactions = reactions_for(session, [row.wamid for row in batch if row.wamid])
    return [MessageData.of(row, reactions.get(row.wamid)) for row in batch]


@dataclass(frozen=True)
class Kind:
    """What one export reads (in batches by `key`) and the serializer that makes its records of a batch."""

    query: Select
    key: Any
    key_of: Callable[[Row], int]
    schema: type[BaseModel]
    serialize: Callable[[Session, list[Row]], list[BaseModel]]


KINDS: dict[str, Kind] = {
    "contacts": Kind(
        select(*CONTACT_COLUMNS),
        Contact.id,
        lambda row: row[0],
        ContactData,
        lambda _session, batch: [ContactData.of_row(row) for row in batch],
    ),
    "conversations": Kind(
        select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id),
        Conversation.id,
        lambda row: row[0].id,
        ConversationData,
        lambda _session, batch: [ConversationData.of(conversation, contact) for conversation, contact in batch],
    ),
    "messages": Kind(select(*MESSAGE_COLUMNS), Message.id, lambda row: row.id, MessageData, _messages),
    "templates": Kind(
        select(Template),
        Template.id,
        lambda row: row[0].id,
        TemplateData,
        lambda _session, batch: [TemplateData.of(template) for (template,) in batch],
    ),
    "audit": Kind(
        select(AuditEvent),
        AuditEvent.id,
        lambda row: row[0].id,
        AuditData,
        lambda _session, batch: [AuditData.of(event) for (event,) in batch],
    ),
}
NOT_YET = {"orders": "SigDesk has no orders yet, so there is nothing to export"}
WHAT = tuple(KINDS) + ("all",)

Progress = Callable[[int, int], None]


class ExportError(Exception):
    """The export cannot be made as asked; the message says why."""


def plain_values(values: dict[str, Any]) -> dict[str, Any]:
    """Times as ISO 8601 text, the rest as is: how exports write a record."""
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in values.items()}


def _nested(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (alone or or None): its fields become dotted CSV columns."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    for candidate in typing.get_args(annotation) if union else (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _paths(schema: type[BaseModel]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, field in schema.model_fields.items():
        nested = _nested(field.annotation)
        paths += [(name, *path) for path in _paths(nested)] if nested else [(name,)]
    return paths


PATHS: dict[str, list[tuple[str, ...]]] = {kind: _paths(spec.schema) for kind, spec in KINDS.items()}
COLUMNS: dict[str, tuple[str, ...]] = {kind: tuple(".".join(path) for path in PATHS[kind]) for kind in KINDS}


def csv_row(kind: str, record: BaseModel) -> list[Any]:
    """One record as the kind's CSV columns: the serializer's JSON, flattened."""
    dumped = record.model_dump(mode="json")
    cells = []
    for path in PATHS[kind]:
        value = dumped
        for name in path:
            value = value[name]
            if value is None:
                break
        if value is None:
            value = ""
        elif value.__class__ in (dict, list):
            value = orjson.dumps(value).decode()
        cells.append(value)
    return cells


def records(session: Session, kind: str) -> Iterator[BaseModel]:
    """Every record of one kind through its serializer, in id order, read in batches so memory stays flat."""
    spec = KINDS[kind]
    for batch in in_key_order(session, spec.query, spec.key, spec.key_of, BATCH):
        yield from spec.serialize(session, batch)


def count(session: Session, kind: str) -> int:
    return session.execute(select(func.count(KINDS[kind].key))).scalar_one()


def write_kind(
    session: Session, kind: str, fmt: str, sink: BinaryIO, bom: bool = False, tick: Callable[[], None] | None = None
) -> int:
    text = io.TextIOWrapper(
        sink, encoding="utf-8-sig" if bom and fmt == "csv" else "utf-8", newline="", write_through=False
    )
    written = 0
    try:
        if fmt == "csv":
            writer = csv.writer(text)
            writer.writerow(COLUMNS[kind])
            for found in records(session, kind):
                writer.writerow(csv_row(kind, found))
                written += 1
                if tick:
                    tick()
        else:
            text.flush()
            for found in records(session, kind):
                sink.write(found.model_dump_json().encode() + b"\n")
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
