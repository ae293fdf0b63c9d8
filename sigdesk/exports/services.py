"""Exports of the business's data as JSON Lines or CSV, streamed so size never costs memory.

Each record is its entity's one serializer (sigdesk/<feature>/schemas.py): a JSON Lines record is what the
API answers for that contact, conversation, message or template. CSV flattens it: a nested object (a
conversation's contact, a message's media and error) becomes dotted columns (`contact.name`), a list or
free-form object (reactions, details, components) JSON text in its cell. Audit entries are written as the
audit log shows them. Times are ISO 8601 in UTC. CSV may start with the BOM that Excel needs to read UTF-8;
"all" zips one file per kind.

Contacts carry the whole contact record: tags and stage by name, marketing consent, lead score and the custom
fields. JSON keeps `fields` an object and `tags` a list; CSV writes the tags as one cell ("vip, wholesale") and
each custom field in a column of its own, `field:<key>`, in the order the admins set (a choices field's choices
joined like the tags). A contacts export may hold a saved segment, a filter or a selection (ContactScope),
read in batches of ids like the rest.

Orders carry their lines and status history (sigdesk.sales.services.OrderData). CSV writes one row per line, the
order's columns repeated beside `line.<name>` columns, so a spreadsheet sums lines directly; the status history
stays in JSON.

CSV cells are written so a spreadsheet never runs them (OWASP's CSV injection advice): a text cell that starts
with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe. The decision is per column type:
numeric columns (integers, numbers and booleans in the serializer) are written as numbers, so -5 stays -5;
every text column is neutralised, even when its text looks like a number ("-5" in a name becomes "'-5").

Files are created readable by their owner only (0600). The Exports page writes its downloads into a private
folder in the data dir (`exports/`, 0700) and deletes each once it is sent; leftovers are removed at start.
"""

from __future__ import annotations

import csv
import io
import os
import re
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
from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import AuditData, record_by
from sigdesk.contacts.services import COLUMNS as CONTACT_COLUMNS
from sigdesk.contacts.services import ContactData, with_tags_and_stage
from sigdesk.conversations.schemas import MESSAGE_COLUMNS, ConversationData, MessageData
from sigdesk.conversations.services import reactions_for
from sigdesk.custom_fields.services import definitions
from sigdesk.db import Database, write_lock
from sigdesk.errors import UserError
from sigdesk.events.catalogue import ExportFinished
from sigdesk.events.outbox import record
from sigdesk.message_templates.schemas import TemplateData
from sigdesk.lifecycle.services import name_key
from sigdesk.models import AuditEvent, Contact, Conversation, Message, Segment, Template
from sigdesk.paging import Cursor, Page, in_key_order, newest_first, page
from sigdesk.models.sales import Order
from sigdesk.sales.services import OrderData, OrderLineData, orders_data
from sigdesk.segments.services import check_definition, contact_ids, count_contacts

BATCH = 2000
FORMATS = ("json", "csv")
# The file name endings each export may be written under: "all" is always a zip.
EXTENSIONS = {"csv": (".csv",), "json": (".jsonl", ".ndjson", ".json"), "all": (".zip",)}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PRIVATE_DIR = "exports"


def _contacts(session: Session, batch: list[Row]) -> list[ContactData]:
    """A batch of contacts with everything the contact record holds: tags, stage and custom field values."""
    return with_tags_and_stage(session, [ContactData.of_row(row) for row in batch])


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
    noun: tuple[str, ...]  # what it counts, for counted(): ("order",) or ("audit log entry", "audit log entries")


KINDS: dict[str, Kind] = {
    "contacts": Kind(select(*CONTACT_COLUMNS), Contact.id, lambda row: row[0], ContactData, _contacts, ("contact",)),
    "conversations": Kind(
        select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id),
        Conversation.id,
        lambda row: row[0].id,
        ConversationData,
        lambda _session, batch: [ConversationData.of(conversation, contact) for conversation, contact in batch],
        ("conversation",),
    ),
    "messages": Kind(select(*MESSAGE_COLUMNS), Message.id, lambda row: row.id, MessageData, _messages, ("message",)),
    "templates": Kind(
        select(Template),
        Template.id,
        lambda row: row[0].id,
        TemplateData,
        lambda _session, batch: [TemplateData.of(template) for (template,) in batch],
        ("template",),
    ),
    "audit": Kind(
        select(AuditEvent),
        AuditEvent.id,
        lambda row: row[0].id,
        AuditData,
        lambda _session, batch: [AuditData.of(event) for (event,) in batch],
        ("audit log entry", "audit log entries"),
    ),
    "orders": Kind(
        select(Order),
        Order.id,
        lambda row: row[0].id,
        OrderData,
        lambda session, batch: orders_data(session, [order for (order,) in batch]),
        ("order",),
    ),
}
NOT_YET: dict[str, str] = {}
WHAT = tuple(KINDS) + ("all",)

Progress = Callable[[int, int], None]


class ExportError(UserError):
    """The export cannot be made as asked; the message says why (and `field` which input, when one is)."""


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text rather than runs as a formula. Numbers (and booleans) pass as they
    are, so a negative number stays a number; text starting like a formula gets OWASP's leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def create_private(path: Path) -> BinaryIO:
    """A new file only its owner may read (0600), whatever the umask: exports hold personal data."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    return os.fdopen(descriptor, "wb")


def private_dir(data_dir: Path) -> Path:
    """The data dir's folder for downloads being made or sent (0700), created when missing."""
    folder = Path(data_dir) / PRIVATE_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def clear_leftovers(data_dir: Path) -> int:
    """Remove downloads a crash or a cut connection left behind; returns how many. Run at start."""
    folder = Path(data_dir) / PRIVATE_DIR
    if not folder.is_dir():
        return 0
    removed = 0
    for leftover in folder.iterdir():
        if leftover.is_file() or leftover.is_symlink():
            leftover.unlink(missing_ok=True)
            removed += 1
    private_dir(data_dir)
    return removed


def check_extension(what: str, fmt: str, out_path: Path) -> None:
    """Refuse a file name whose ending says another format than the one written (a zip for "all")."""
    allowed = EXTENSIONS["all" if what == "all" else fmt]
    if not Path(out_path).name.lower().endswith(allowed):
        written = "a zip" if what == "all" else ("CSV" if fmt == "csv" else "JSON Lines")
        example = f"{Path(out_path).stem or what}{allowed[0]}"
        endings = " or ".join(allowed)
        raise ExportError(
            f"--what {what} --format {fmt} writes {written}: end the file name with {endings} (for example {example})",
            field="out",
        )


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


# A list a person reads as one cell, written "a, b" rather than as JSON (a contact's tags)
JOINED: dict[str, frozenset[str]] = {"contacts": frozenset({"tags"})}
# A free-form object spread into one CSV column per custom field, `field:<key>` (a contact's custom fields)
SPREAD: dict[str, str] = {"contacts": "fields"}
FIELD_COLUMN = "field:"
# A list of records written one CSV row each, beside their parent's columns repeated (an order's lines, as
# `line.<name>` columns): (the list's field, its records' model, the columns' prefix). JSON keeps the list.
EXPLODED: dict[str, tuple[str, type[BaseModel], str]] = {"orders": ("lines", OrderLineData, "line")}
# Parts left out of CSV, where a row per line would repeat them (an order's status history stays in JSON).
CSV_DROPPED: dict[str, frozenset[str]] = {"orders": frozenset({"history"})}


def _csv_paths(kind: str, schema: type[BaseModel]) -> list[tuple[str, ...]]:
    left_out = {SPREAD.get(kind), *CSV_DROPPED.get(kind, ()), EXPLODED[kind][0] if kind in EXPLODED else None}
    return [path for path in _paths(schema) if path[0] not in left_out]


PATHS: dict[str, list[tuple[str, ...]]] = {kind: _csv_paths(kind, spec.schema) for kind, spec in KINDS.items()}
EXPLODED_PATHS: dict[str, list[tuple[str, ...]]] = {kind: _paths(model) for kind, (_, model, _) in EXPLODED.items()}
COLUMNS: dict[str, tuple[str, ...]] = {
    kind: tuple(".".join(path) for path in PATHS[kind])
    + tuple(f"{EXPLODED[kind][2]}.{'.'.join(path)}" for path in EXPLODED_PATHS.get(kind, ()))
    for kind in KINDS
}


def _joined(values: list[Any]) -> str:
    return ", ".join("" if value is None else str(value) for value in values)


def csv_columns(session: Session, kind: str) -> list[str]:
    """The kind's CSV header: its record's columns, then (contacts) one `field:<key>` column per custom field."""
    if kind not in SPREAD:
        return list(COLUMNS[kind])
    return list(COLUMNS[kind]) + [FIELD_COLUMN + definition.key for definition in definitions(session)]


def csv_rows(kind: str, record: BaseModel, spread: list[str] | tuple[str, ...] = ()) -> list[list[Any]]:
    """A record's CSV rows: one, or one per item of its EXPLODED list (at least one, its cells empty)."""
    if kind not in EXPLODED:
        return [csv_row(kind, record, spread)]
    dumped = record.model_dump(mode="json")
    items = dumped.get(EXPLODED[kind][0]) or [None]
    return [
        csv_row(kind, record, spread, dumped) + _cells(EXPLODED_PATHS[kind], item or {}, frozenset()) for item in items
    ]


def _cells(paths: list[tuple[str, ...]], dumped: dict[str, Any], joined: frozenset[str]) -> list[Any]:
    cells = []
    for path in paths:
        value: Any = dumped
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
            if value is None:
                break
        if value is None:
            value = ""
        elif value.__class__ is list and path[0] in joined:
            value = _joined(value)
        elif value.__class__ in (dict, list):
            value = orjson.dumps(value).decode()
        cells.append(safe_cell(value))
    return cells


def csv_row(
    kind: str, record: BaseModel, spread: list[str] | tuple[str, ...] = (), dumped: dict[str, Any] | None = None
) -> list[Any]:
    """One record as the kind's CSV columns: the serializer's JSON, flattened; `spread` names the keys of its
    free-form object that have their own columns (a contact's custom fields, in csv_columns' order)."""
    dumped = dumped if dumped is not None else record.model_dump(mode="json")
    joined = JOINED.get(kind, frozenset())
    cells = []
    for path in PATHS[kind]:
        value = dumped
        for name in path:
            value = value[name]
            if value is None:
                break
        if value is None:
            value = ""
        elif value.__class__ is list and path[0] in joined:
            value = _joined(value)
        elif value.__class__ in (dict, list):
            value = orjson.dumps(value).decode()
        cells.append(safe_cell(value))
    if spread:
        values = dumped.get(SPREAD[kind]) or {}
        for key in spread:
            value = values.get(key)
            if value is None:
                value = ""
            elif value.__class__ is list:
                value = _joined(value)
            elif value.__class__ is dict:
                value = orjson.dumps(value).decode()
            cells.append(safe_cell(value))
    return cells


@dataclass(frozen=True)
class ContactScope:
    """Which contacts a contacts export holds: those picked by id (a selection on the Contacts page), those in
    a saved segment (by name or id), or those matching a filter definition and search text (the Contacts
    page's); all of them when nothing is given."""

    ids: tuple[int, ...] | None = None
    segment: str | None = None
    definition: dict[str, Any] | None = None
    q: str = ""

    @property
    def everyone(self) -> bool:
        return self.ids is None and self.segment is None and self.definition is None and not self.q.strip()


@dataclass(frozen=True)
class _Chosen:
    """A scope made concrete: the contact ids it holds (read again, in batches, each time they are needed), how
    many there are, and what the audit entry says of it."""

    ids: Callable[[], Iterator[int]]
    count: Callable[[], int]
    about: dict[str, Any]


def _segment(session: Session, name_or_id: str) -> Segment:
    """The saved segment by its id or its name (whatever its case); refused, naming the segment field and
    listing the segments there are, when there is none such."""
    text = name_or_id.strip()
    found = None
    if text.isascii() and text.isdigit() and len(text) <= 15:
        found = session.get(Segment, int(text))
    if found is None and text:
        found = session.scalars(select(Segment).where(Segment.name_key == name_key(text[:64])).limit(1)).first()
    if found is None:
        names = session.scalars(select(Segment.name).order_by(Segment.name).limit(11)).all()
        known = (
            f"; saved segments: {', '.join(names[:10])}{', ...' if len(names) > 10 else ''}"
            if names
            else "; there are no saved segments"
        )
        raise ExportError(f"There is no segment {text[:64]!r}{known}", 404, field="segment")
    return found


def _filtered(session: Session, definition: Any, q: str, field: str, about: dict[str, Any]) -> _Chosen:
    """The contacts a filter definition and search text find; a filter SigDesk cannot read or compile (a tag
    since deleted...) is refused here, before anything is written, naming `field`."""
    try:
        parsed = check_definition(session, definition)
    except UserError as refused:
        raise ExportError(f"The {field} cannot be used: {refused}", refused.status, field=field) from refused
    return _Chosen(lambda: contact_ids(session, parsed, q, BATCH), lambda: count_contacts(session, parsed, q), about)


def choose(session: Session, scope: ContactScope) -> _Chosen | None:
    """The contacts a scope holds, checked before anything is written; None for every contact."""
    if scope.everyone:
        return None
    if sum(part is not None for part in (scope.ids, scope.segment, scope.definition)) > 1:
        raise ExportError("Export a segment, a filter or a selection of contacts, not several at once", field="segment")
    if scope.ids is not None:
        picked = sorted(set(scope.ids))
        if not picked:
            raise ExportError("The selection holds no contacts: pick some first", field="ids")

        def existing() -> int:
            return sum(
                session.execute(select(func.count(Contact.id)).where(Contact.id.in_(ids))).scalar_one()
                for ids in _batched(iter(picked), BATCH)
            )

        return _Chosen(lambda: iter(picked), existing, {"selection": len(picked)})
    if scope.segment is not None:
        segment = _segment(session, scope.segment)
        return _filtered(session, segment.definition, scope.q, "segment", {"segment": segment.id})
    return _filtered(session, scope.definition or {}, scope.q, "filter", {"filter": True})


MAX_IDS = 100_000


def parse_ids(text: str, field: str = "ids") -> tuple[int, ...]:
    """Contact ids as typed or linked: "1,2,3" (spaces allowed); refused, naming the field, when one is not an id."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise ExportError(f"{field} holds no contact ids: give them as 1,2,3", field=field.lstrip("-"))
    if len(parts) > MAX_IDS:
        raise ExportError(
            f"{field} holds more than {MAX_IDS} contacts: export a segment instead", field=field.lstrip("-")
        )
    bad = [part for part in parts if not (part.isascii() and part.isdigit() and len(part) <= 15)]
    if bad:
        raise ExportError(
            f"{field} holds {bad[0][:20]!r}, which is not a contact id: give them as 1,2,3", field=field.lstrip("-")
        )
    return tuple(int(part) for part in parts)


def _batched(ids: Iterator[int], size: int) -> Iterator[list[int]]:
    batch: list[int] = []
    for contact_id in ids:
        batch.append(contact_id)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def records(session: Session, kind: str, chosen: _Chosen | None = None) -> Iterator[BaseModel]:
    """Every record of one kind through its serializer, in id order (within each batch of a chosen few), read in
    batches so memory stays flat."""
    spec = KINDS[kind]
    if chosen is None:
        for batch in in_key_order(session, spec.query, spec.key, spec.key_of, BATCH):
            yield from spec.serialize(session, batch)
        return
    for ids in _batched(chosen.ids(), BATCH):
        batch = session.execute(spec.query.where(spec.key.in_(ids)).order_by(spec.key)).all()
        if batch:
            yield from spec.serialize(session, batch)


def count(session: Session, kind: str, chosen: _Chosen | None = None) -> int:
    if chosen is None:
        return session.execute(select(func.count(KINDS[kind].key))).scalar_one()
    return chosen.count()


def write_kind(
    session: Session,
    kind: str,
    fmt: str,
    sink: BinaryIO,
    bom: bool = False,
    tick: Callable[[], None] | None = None,
    chosen: _Chosen | None = None,
) -> int:
    text = io.TextIOWrapper(
        sink, encoding="utf-8-sig" if bom and fmt == "csv" else "utf-8", newline="", write_through=False
    )
    written = 0
    try:
        if fmt == "csv":
            writer = csv.writer(text)
            header = csv_columns(session, kind)
            writer.writerow(header)
            spread = [column[len(FIELD_COLUMN) :] for column in header[len(COLUMNS[kind]) :]]
            for found in records(session, kind, chosen):
                writer.writerows(csv_rows(kind, found, spread))
                written += 1
                if tick:
                    tick()
        else:
            text.flush()
            for found in records(session, kind, chosen):
                sink.write(found.model_dump_json().encode() + b"\n")
                written += 1
                if tick:
                    tick()
        text.flush()
    finally:
        text.detach()
    return written


def export(
    session: Session,
    what: str,
    fmt: str,
    out_path: Path,
    bom: bool = False,
    progress: Progress | None = None,
    contacts: ContactScope | None = None,
) -> dict[str, int]:
    """Write the export to out_path (a .zip for "all"); returns rows written per kind. Never overwrites.
    `contacts` narrows a contacts export to a segment, a filter or a selection."""
    if what in NOT_YET:
        raise ExportError(NOT_YET[what], field="what")
    if what not in WHAT:
        raise ExportError(f"Unknown export {what!r}; choose one of {', '.join(WHAT)}", field="what")
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose json or csv", field="format")
    out_path = Path(out_path)
    if out_path.exists():
        raise ExportError(f"{out_path} already exists; choose another file name")
    if not out_path.parent.is_dir():
        raise ExportError(f"The folder {out_path.parent} does not exist")
    check_extension(what, fmt, out_path)
    chosen = None
    if contacts is not None and not contacts.everyone:
        if what != "contacts":
            raise ExportError("Only a contacts export can hold a segment, a filter or a selection", field="what")
        chosen = choose(session, contacts)
    kinds = list(KINDS) if what == "all" else [what]
    total = sum(count(session, kind, chosen) for kind in kinds)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress and (done % 1000 == 0 or done == total):
            progress(done, total)

    partial = out_path.with_name(out_path.name + ".partial")
    partial.unlink(missing_ok=True)  # left by an export that was cut short
    written: dict[str, int] = {}
    try:
        with create_private(partial) as handle:
            if what == "all":
                with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    for kind in kinds:
                        name = f"{kind}.{'jsonl' if fmt == 'json' else 'csv'}"
                        with archive.open(name, "w", force_zip64=True) as member:
                            written[kind] = write_kind(session, kind, fmt, member, bom, tick)
            else:
                written[what] = write_kind(session, what, fmt, handle, bom, tick, chosen)
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
    contacts: ContactScope | None = None,
) -> dict[str, int]:
    """An export as a command, for the Exports page and `sigdesk export` alike: written from a read-only
    session (no write lock while it streams), then audited and recorded as export.finished, with which
    contacts it held when it held some (a segment's id, a selection's size, or that a filter chose them)."""
    about: dict[str, Any] = {}
    with database.session(write=False) as session:
        if contacts is not None and not contacts.everyone and what == "contacts":
            about = choose(session, contacts).about  # type: ignore[union-attr]
        written = export(session, what, fmt, out_path, bom, progress, contacts)
    rows = sum(written.values())
    with write_lock(database.engine), database.session() as session:
        record_by(session, actor, "export.run", what, {"format": fmt, "rows": rows, **about})
        record(session, ExportFinished(what, fmt, rows, {"rows_by_kind": written, **about}))
    return written


def pick_contacts(session: Session, text: str, cursor: Cursor | None = None, limit: int = 20) -> Page[ContactData]:
    """Contacts whose name, number or Meta user id contains `text` (a number in any format: "+44 7700-900"),
    those who wrote most recently first, a page at a time: how the Exports page finds the person to export
    or anonymise without knowing SigDesk's ids."""
    query = select(*CONTACT_COLUMNS)
    text = text.strip()
    if text:
        found = [
            Contact.display_name.icontains(text, autoescape=True),
            Contact.profile_name.icontains(text, autoescape=True),
            Contact.wa_id.contains(text, autoescape=True),
            Contact.user_id.contains(text, autoescape=True),
        ]
        digits = re.sub(r"\D", "", text)
        if digits and digits != text:
            found.append(Contact.wa_id.contains(digits, autoescape=True))
        query = query.where(or_(*found))
    rows = session.execute(newest_first(query, Contact.last_inbound_at, Contact.id, cursor, limit)).all()
    listed = page(rows, limit, lambda row: Cursor(row.last_inbound_at, row.id))
    return Page([ContactData.of_row(row) for row in listed.items], listed.next_cursor)
