"""Imports, one command per action: start_import (contacts) or start_kind_import (products, orders:
sigdesk.imports.kinds), run_step (the worker, or the CLI in its own process) and undo_import. The run, its
progress, the error report and undo are the same machinery for every kind; a kind brings its mapping spec,
how it reads and writes a batch, and what it announces (the rules below are the contacts kind's).

Rules, decided once here:

- Matching: a row finds its contact by the normalised phone number, else by email (stored lower case).
  An email match whose contact has another phone number is refused rather than renumbered.
- Modes: create (a row matching a contact is refused), update (a row matching none is refused), upsert.
- Empty cells change nothing: an import fills and overwrites fields, never clears them. Tags are added
  to those the contact has; stage, owner and custom fields are replaced.
- Duplicates inside the file: the first row for a contact wins; a later row with the same phone or
  email (or reaching the same contact) is refused as a duplicate of that line, so one file never edits
  a contact twice and undo has one "before" per contact.
- Consent from a column is applied only when the person confirmed where it comes from; each word is
  recorded through sigdesk.consent.commands.record_consent (source "import", evidence naming the file).
- Unknown tags, stages and owners refuse the row (admins keep those lists).
- Speed: rows are read as a stream and written in batches of BATCH, set-based: one statement per kind of
  write per batch. Contacts created or updated by an import get no contact.created / contact.changed
  event each: the job records one `contacts.imported` event with its counts (and one audit entry),
  which is what subscribers hear. Consent words keep their own events and audit entries.
- Undo deletes the contacts the import created that have no conversation or message since (others are
  kept and counted), puts back the columns, stage, custom fields and consent of those it updated, and
  takes off the tags it added. Asking for it (undo_import) only marks the job "undoing"; the worker (or
  the CLI) works through it in set-based batches (undo_step), committing its place after each.
- A created contact needs a value for every required custom field (a row without one is refused naming
  the field); an update needs none, since an import never clears a value.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.consent.commands import OPTED_IN, OPTED_OUT, record_consent
from sigdesk.contacts.fields import COLUMN_OF as STANDARD_COLUMNS
from sigdesk.contacts.fields import COUNTRIES, clean, default_country
from sigdesk.db import utcnow, write_lock
from sigdesk.errors import Conflict, UserError
from sigdesk.events.catalogue import (
    ContactsImported,
    ContactsImportQueued,
    ContactsImportUndone,
    ContactsImportUndoQueued,
)
from sigdesk.events.outbox import record
from sigdesk.imports import mapping as mappings
from sigdesk.imports.kinds import Kind, kind_of, register
from sigdesk.imports.reading import FileInfo, Row, count_rows, inspect, iter_rows
from sigdesk.imports.services import MODES, get_job, purge_old_rejections, stored_path
from sigdesk.lifecycle.services import name_key
from sigdesk.models import (
    ConsentEvent,
    Contact,
    ContactFieldValue,
    ContactStage,
    ContactTag,
    Conversation,
    ImportChange,
    ImportJob,
    ImportRecord,
    ImportRejection,
    Message,
    Stage,
    StageChange,
    Tag,
    User,
)
from sigdesk.roles import can

log = logging.getLogger(__name__)

BATCH = 1000
UNDO_BATCH = 2000
STEP_SECONDS = 1.0
MAX_SOURCE = 500
CONSENT_WORDS = {
    "opted_in": OPTED_IN,
    "opted in": OPTED_IN,
    "opt-in": OPTED_IN,
    "yes": OPTED_IN,
    "y": OPTED_IN,
    "true": OPTED_IN,
    "1": OPTED_IN,
    "opted_out": OPTED_OUT,
    "opted out": OPTED_OUT,
    "opt-out": OPTED_OUT,
    "no": OPTED_OUT,
    "n": OPTED_OUT,
    "false": OPTED_OUT,
    "0": OPTED_OUT,
}
# The contact columns an import writes, by mapping field.
COLUMN_OF = {("owner" if field == "owner_id" else field): column for field, column in STANDARD_COLUMNS.items()}
CONSENT_COLUMNS = ("marketing_consent", "opted_out_marketing", "opted_out_changed_at")
_c = Contact.__table__.c


def _require(actor: Actor) -> None:
    if actor.user is not None and not can(actor.user.role, "contacts.import"):
        raise UserError("Your role does not allow importing contacts", status=403)


def custom_definitions(session: Session) -> dict[str, Any]:
    """The custom fields by key; none when the custom fields feature is not there."""
    try:
        from sigdesk.custom_fields.services import definitions
    except ImportError:
        return {}
    found = definitions(session)
    items = found.values() if isinstance(found, Mapping) else found
    return {definition.key: definition for definition in items}


# --- start -----------------------------------------------------------------------------------------


def start_import(
    session: Session,
    actor: Actor,
    data_dir: Path,
    stored: str,
    file_name: str,
    mapping: Mapping[str, str] | None = None,
    mode: str = "upsert",
    country: str | None = None,
    consent_confirmed: bool = False,
    consent_source: str | None = None,
    *,
    suggest: bool = False,
    claim: bool = False,
    columns: Sequence[str] | None = None,
) -> ImportJob:
    """Queue the import of an uploaded file (save_upload's `stored` name) after checking the file, the
    mapping (header -> field; None: the suggested one; with `suggest`, the given pairs adjust the
    suggestion), the mode and the country. With `claim` the caller runs it itself (the CLI): the job
    starts as running, so the server's worker leaves it alone. `columns` (the page) gives a field per
    column, in order, instead of `mapping`."""
    _require(actor)
    if mode not in MODES:
        raise UserError(f"'mode' must be one of {', '.join(MODES)}", field="mode")
    if country is not None and not isinstance(country, str):
        raise UserError("Give the country as a two-letter code such as DE", field="country")
    country = (country or "").strip().upper() or default_country(session)
    if country is not None and country not in COUNTRIES:
        raise UserError("Give the country as a two-letter ISO code such as DE, US or BR", field="country")
    source = (consent_source or "").strip()
    if len(source) > MAX_SOURCE:
        raise UserError(f"Describe the consent's source in at most {MAX_SOURCE} characters", field="consent_source")
    file_name, info = checked_upload(session, data_dir, stored, file_name)
    custom = custom_definitions(session)
    if columns is not None:
        if len(columns) != len(info.headers):
            raise UserError("Map every column of the file (or upload it again)", field="mapping")
        mapped = mappings.check(
            [
                (index, header, mappings.check_field(str(columns[index]), custom))
                for index, header in enumerate(info.headers)
            ]
        )
    else:
        base = mappings.suggest(info.headers, custom) if (suggest or mapping is None) else None
        mapped = mappings.build(info.headers, mapping, custom, base)
    fields = {item[2] for item in mapped}
    if "consent" in fields:
        consent_header = next(header for _i, header, f in mapped if f == "consent")
        if not consent_confirmed:
            raise UserError(
                f"Column '{consent_header}' is mapped to consent: confirm where this consent comes from "
                "(or map the column to ignore)",
                field="consent_confirmed",
            )
        if not source:
            raise UserError(
                "Say where the consent in the file comes from (a sign-up form, an event...)", field="consent_source"
            )
    if mode == "create" and "phone" not in fields:
        raise UserError("Creating contacts needs a column mapped to phone", field="mapping")
    now = utcnow()
    job = ImportJob(
        file_name=file_name,
        stored_path=stored,
        format=info.format,
        encoding=info.encoding,
        delimiter=info.delimiter,
        headers=json.dumps(info.headers, ensure_ascii=False),
        mapping=mappings.dumps(mapped),
        mode=mode,
        country=country,
        consent_confirmed=bool(consent_confirmed and "consent" in fields),
        consent_source=source or None,
        state="running" if claim else "queued",
        processed=0,
        created=0,
        updated=0,
        rejected=0,
        created_by=actor.user_id,
        created_at=now,
        started_at=now if claim else None,
    )
    session.add(job)
    session.flush()
    record_by(
        session,
        actor,
        "contacts.import.start",
        f"import {job.id}",
        {"file": file_name, "mode": mode, "format": info.format, "fields": sorted(fields - {mappings.IGNORE})},
    )
    record(session, ContactsImportQueued(job.id))
    return job


def checked_upload(session: Session, data_dir: Path, stored: str, file_name: str) -> tuple[str, FileInfo]:
    """The file's plain name and what reading it found, refusing a bad name, an unknown or expired upload
    and one started already (a double submit or a replayed request would import the file twice)."""
    if not isinstance(file_name, str) or not file_name.strip() or len(file_name) > 255:
        raise UserError("The file needs a name of at most 255 characters", field="file")
    file_name = Path(file_name.replace("\\", "/")).name
    path = stored_path(data_dir, stored)
    started = session.scalar(select(ImportJob.id).where(ImportJob.stored_path == stored).limit(1))
    if started is not None:
        raise Conflict(f"The upload '{file_name}' was started already, as import {started}", field="file")
    return file_name, inspect(path, file_name)


def start_kind_import(
    session: Session,
    actor: Actor,
    data_dir: Path,
    stored: str,
    file_name: str,
    kind: str,
    mapping: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    suggest: bool = False,
    claim: bool = False,
    columns: Sequence[str] | None = None,
) -> ImportJob:
    """Queue the import of an uploaded file of another kind than contacts (products, orders), as
    start_import does: the file and the mapping checked against the kind's fields, the kind's options
    checked and kept on the job (JSON)."""
    if kind == "contacts":
        raise UserError("Contacts are imported with their own options (start_import)", field="kind")
    handler = kind_of(kind)
    handler.require(actor)
    file_name, info = checked_upload(session, data_dir, stored, file_name)
    spec = handler.spec
    if columns is not None:
        if len(columns) != len(info.headers):
            raise UserError("Map every column of the file (or upload it again)", field="mapping")
        mapped = mappings.check(
            [
                (index, header, mappings.check_field(str(columns[index]), (), spec))
                for index, header in enumerate(info.headers)
            ],
            spec,
        )
    else:
        base = mappings.suggest(info.headers, (), spec) if (suggest or mapping is None) else None
        mapped = mappings.build(info.headers, mapping, (), base, spec)
    checked = handler.options(session, dict(options or {}))
    now = utcnow()
    job = ImportJob(
        kind=kind,
        options=json.dumps(checked),
        file_name=file_name,
        stored_path=stored,
        format=info.format,
        encoding=info.encoding,
        delimiter=info.delimiter,
        headers=json.dumps(info.headers, ensure_ascii=False),
        mapping=mappings.dumps(mapped),
        mode=handler.mode,
        country=checked.get("country"),
        consent_confirmed=False,
        state="running" if claim else "queued",
        processed=0,
        created=0,
        updated=0,
        rejected=0,
        lines=0,
        contacts_created=0,
        removed=0,
        created_by=actor.user_id,
        created_at=now,
        started_at=now if claim else None,
    )
    session.add(job)
    session.flush()
    fields = sorted({item[2] for item in mapped} - {mappings.IGNORE})
    record_by(
        session,
        actor,
        f"{kind}.import.start",
        f"import {job.id}",
        {"file": file_name, "format": info.format, "fields": fields},
    )
    record(session, ContactsImportQueued(job.id))  # wakes the imports task, whatever the kind
    return job


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class _Context:
    """What a job's rows are read against, loaded once per step."""

    job: ImportJob
    mapped: list[tuple[int, str, str]]
    width: int
    tags: dict[str, int]
    stages: dict[str, tuple[int, str]]
    owners: dict[str, int]
    custom: dict[str, Any]
    evidence: str
    required: list[Any] = field(default_factory=list)


@dataclass
class _Parsed:
    line: int
    cells: list[str]
    values: dict[str, Any] = field(default_factory=dict)
    tag_ids: list[int] = field(default_factory=list)
    stage: tuple[int, str] | None = None
    custom: dict[int, tuple[Any, Any, Any]] = field(default_factory=dict)
    consent: str | None = None


def _context(session: Session, job: ImportJob) -> _Context:
    mapped = mappings.loads(job.mapping)
    fields = {item[2] for item in mapped}
    tags = dict(session.execute(select(Tag.name_key, Tag.id)).all()) if "tags" in fields else {}
    stages = (
        {key: (stage_id, name) for key, stage_id, name in session.execute(select(Stage.name_key, Stage.id, Stage.name))}
        if "stage" in fields
        else {}
    )
    owners = (
        {
            email.lower(): user_id
            for email, user_id in session.execute(select(User.email, User.id).where(User.is_active.is_(True)))
        }
        if "owner" in fields
        else {}
    )
    # every definition unless the job only updates: a created contact must have the required fields' values
    wants_all = job.mode != "update" or any(f.startswith(mappings.CUSTOM_PREFIX) for f in fields)
    custom = custom_definitions(session) if wants_all else {}
    required = [d for d in custom.values() if getattr(d, "required", False)] if job.mode != "update" else []
    evidence = f"Imported from {job.file_name} (import {job.id})"
    if job.consent_source:
        evidence += f": {job.consent_source}"
    return _Context(job, mapped, len(json.loads(job.headers)), tags, stages, owners, custom, evidence[:1000], required)


def _parse(ctx: _Context, session: Session, row: Row) -> _Parsed:
    """A row's values, or a UserError saying what is wrong with it."""
    cells = row.cells
    if len(cells) > ctx.width and any(cell.strip() for cell in cells[ctx.width :]):
        raise UserError(
            f"This row has {len(cells)} cells but the header names {ctx.width} columns "
            "(the error report keeps the others in its extra columns)"
        )
    parsed = _Parsed(row.line, cells)
    given: dict[str, str] = {}
    for index, header, target in ctx.mapped:
        if target == mappings.IGNORE:
            continue
        raw = cells[index].strip() if index < len(cells) else ""
        if not raw:
            continue
        if target in mappings.STANDARD:
            given[target] = raw
        elif target == "owner":
            owner = ctx.owners.get(raw.lower())
            if owner is None:
                raise UserError(f"{header}: there is no active user with the email '{raw}' to own the contact")
            parsed.values["owner_id"] = owner
        elif target == "tags":
            for name in (part.strip() for part in raw.replace(";", ",").split(",")):
                if not name:
                    continue
                tag_id = ctx.tags.get(name_key(name))
                if tag_id is None:
                    raise UserError(f"{header}: there is no tag '{name}' (admins add tags in Settings → Tags)")
                if tag_id not in parsed.tag_ids:
                    parsed.tag_ids.append(tag_id)
        elif target == "stage":
            stage = ctx.stages.get(name_key(raw))
            if stage is None:
                raise UserError(f"{header}: there is no stage '{raw}' (admins keep the list in Settings → Stages)")
            parsed.stage = stage
        elif target == "consent":
            status = CONSENT_WORDS.get(raw.lower())
            if status is None:
                raise UserError(f"{header}: '{raw}' is not a consent (use opted_in, opted_out, yes or no)")
            parsed.consent = status if ctx.job.consent_confirmed else None
        else:
            definition = ctx.custom.get(target[len(mappings.CUSTOM_PREFIX) :])
            if definition is None:
                raise UserError(f"{header}: the custom field '{target}' no longer exists")
            from sigdesk.custom_fields.values import parse

            parsed.custom[definition.id] = parse(definition, raw, from_text=True)
    if given:
        try:
            values = clean(session, given, ctx.job.country)
        except UserError as refused:
            header = next((h for _i, h, f in ctx.mapped if f == refused.field), refused.field)
            raise UserError(f"{header}: {refused}") from None
        parsed.values.update(values)
    if "wa_id" not in parsed.values and "email" not in parsed.values:
        raise UserError("The row has neither a phone number nor an email to find or create the contact by")
    return parsed


@dataclass
class _Batch:
    """The writes of one batch, gathered then sent set-based."""

    rejections: list[dict[str, Any]] = field(default_factory=list)
    creates: list[_Parsed] = field(default_factory=list)
    updates: list[tuple[_Parsed, dict[str, Any]]] = field(default_factory=list)


def _reject(batch: _Batch, job: ImportJob, line: int, cells: list[str], reason: str) -> None:
    batch.rejections.append(
        {"job_id": job.id, "line": line, "error": reason[:500], "cells": json.dumps(cells, ensure_ascii=False)}
    )


def _existing(session: Session, parsed: list[_Parsed], columns: Sequence[str]) -> tuple[dict, dict]:
    wanted = ["id", "wa_id", "email", *CONSENT_COLUMNS, *columns]
    cols = [_c[name] for name in dict.fromkeys(wanted)]
    phones = sorted({p.values["wa_id"] for p in parsed if "wa_id" in p.values})
    emails = sorted({p.values["email"] for p in parsed if "email" in p.values})
    by_phone: dict[str, dict] = {}
    by_email: dict[str, dict] = {}
    if phones:
        for row in session.execute(select(*cols).where(_c.wa_id.in_(phones))).mappings():
            by_phone[row["wa_id"]] = dict(row)
    if emails:
        for row in session.execute(select(*cols).where(_c.email.in_(emails)).order_by(_c.id)).mappings():
            by_email.setdefault(row["email"], dict(row))
    return by_phone, by_email


def _parse_all(ctx: _Context, session: Session, rows: list[Row]) -> tuple[list[_Parsed], _Batch]:
    """A batch's rows read and checked, before any write (and outside the write lock)."""
    batch = _Batch()
    parsed: list[_Parsed] = []
    for row in rows:
        try:
            parsed.append(_parse(ctx, session, row))
        except UserError as refused:
            _reject(batch, ctx.job, row.line, row.cells, str(refused))
    return parsed, batch


def _process(
    session: Session, actor: Actor, ctx: _Context, parsed: list[_Parsed], batch: _Batch
) -> tuple[int, int, int]:
    """Import one batch of parsed rows; returns (created, updated, rejected)."""
    job = ctx.job
    columns = sorted({column for p in parsed for column in p.values})
    by_phone, by_email = _existing(session, parsed, columns)
    matched_ids = {c["id"] for c in by_phone.values()} | {c["id"] for c in by_email.values()}
    touched = (
        set(
            session.scalars(
                select(ImportChange.contact_id).where(
                    ImportChange.job_id == job.id, ImportChange.contact_id.in_(sorted(matched_ids))
                )
            )
        )
        if matched_ids
        else set()
    )
    seen: dict[Any, int] = {}
    for item in parsed:
        phone, email = item.values.get("wa_id"), item.values.get("email")
        contact = by_phone.get(phone) if phone else None
        if contact is None and email:
            contact = by_email.get(email)
            if contact is not None and phone and contact["wa_id"] and contact["wa_id"] != phone:
                _reject(batch, job, item.line, item.cells, "This email belongs to a contact with another phone number")
                continue
        keys = [("phone", phone)] if phone else []
        keys += [("email", email)] if email else []
        keys += [("contact", contact["id"])] if contact else []
        earlier = next((seen[key] for key in keys if key in seen), None)
        if earlier is not None:
            _reject(
                batch,
                job,
                item.line,
                item.cells,
                f"Duplicate of line {earlier}: only the first row for a contact is imported",
            )
            continue
        if contact is not None and contact["id"] in touched:
            _reject(
                batch,
                job,
                item.line,
                item.cells,
                "Duplicate of an earlier row of this file: only the first row for a contact is imported",
            )
            continue
        for key in keys:
            seen[key] = item.line
        if contact is None:
            if job.mode == "update":
                _reject(
                    batch, job, item.line, item.cells, "No contact has this phone number or email (mode: update only)"
                )
            elif not phone:
                _reject(batch, job, item.line, item.cells, "A new contact needs a phone number")
            elif (missing := _missing_required(ctx, item)) is not None:
                _reject(batch, job, item.line, item.cells, missing)
            else:
                batch.creates.append(item)
        elif job.mode == "create":
            _reject(
                batch,
                job,
                item.line,
                item.cells,
                "A contact with this phone number or email already exists (mode: create only)",
            )
        else:
            batch.updates.append((item, contact))
    now = utcnow()
    changes: list[dict[str, Any]] = []
    created_ids = _create(session, batch.creates, columns, now)
    targets: list[tuple[_Parsed, int, dict[str, Any] | None]] = [
        (item, created_ids[item.values["wa_id"]], None) for item in batch.creates
    ]
    targets += [(item, contact["id"], contact) for item, contact in batch.updates]
    _update(session, job.id, batch.updates, now, changes)
    extra = _classify(session, actor, ctx, targets, now)
    for _item, contact_id, _contact in targets[: len(batch.creates)]:
        changes.append(
            {
                "job_id": job.id,
                "contact_id": contact_id,
                "created": True,
                "previous": None,
                "added": extra.get(contact_id, (None, None))[1],
            }
        )
    for change in changes:
        if not change["created"]:
            previous, added = extra.get(change["contact_id"], ({}, None))
            merged = {**json.loads(change["previous"] or "{}"), **(previous or {})}
            change["previous"] = json.dumps(merged, default=str) if merged else None
            change["added"] = added
    if changes:
        session.execute(insert(ImportChange.__table__), changes)
    if batch.rejections:
        session.execute(insert(ImportRejection.__table__), batch.rejections)
    return len(batch.creates), len(batch.updates), len(batch.rejections)


def _missing_required(ctx: _Context, item: _Parsed) -> str | None:
    """Why a row may not create its contact for want of a required custom field's value, or None.
    Updates need no such check: an import never clears a value."""
    for definition in ctx.required:
        stored = item.custom.get(definition.id)
        if stored is None or all(part is None for part in stored):
            mapped = any(f == mappings.CUSTOM_PREFIX + definition.key for _i, _h, f in ctx.mapped)
            hint = "" if mapped else " (map a column to it)"
            return f"A new contact needs a value for the required field '{definition.label}'{hint}"
    return None


def _create(session: Session, items: list[_Parsed], columns: Sequence[str], now: datetime) -> dict[str, int]:
    if not items:
        return {}
    keys = sorted(set(columns) | {"wa_id"})
    rows = [
        {
            **{key: item.values.get(key) for key in keys},
            "created_at": now,
            "updated_at": now,
            "opted_out_marketing": False,
            "marketing_consent": "unknown",
        }
        for item in items
    ]
    session.execute(insert(Contact.__table__), rows)
    phones = [item.values["wa_id"] for item in items]
    return dict(session.execute(select(_c.wa_id, _c.id).where(_c.wa_id.in_(phones))).all())


def _update(
    session: Session, job_id: int, updates: list[tuple[_Parsed, dict]], now: datetime, changes: list[dict]
) -> None:
    """Write only what changes, grouped by the columns changed (one executemany per group)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item, contact in updates:
        changed = {column: value for column, value in item.values.items() if contact.get(column) != value}
        previous = {column: contact.get(column) for column in changed}
        changes.append(
            {
                "job_id": job_id,
                "contact_id": contact["id"],
                "created": False,
                "previous": json.dumps({"columns": previous}, default=str) if previous else None,
                "added": None,
            }
        )
        if changed:
            groups.setdefault(tuple(sorted(changed)), []).append({"_id": contact["id"], **changed, "updated_at": now})
    for keys, rows in groups.items():
        # one statement per group and batch (a CASE per column), not one round trip per contact
        ids = [row["_id"] for row in rows]
        values = {key: case({row["_id"]: literal(row[key], _c[key].type) for row in rows}, value=_c.id) for key in keys}
        session.execute(
            update(Contact.__table__)
            .where(_c.id.in_(ids))
            .values(**values, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _classify(
    session: Session, actor: Actor, ctx: _Context, targets: list[tuple[_Parsed, int, dict | None]], now: datetime
) -> dict[int, tuple[dict[str, Any], str | None]]:
    """Tags, stage, custom fields and consent for the batch's contacts; per contact, what undo needs:
    (previous values, JSON of what was added)."""
    job = ctx.job
    ids = [contact_id for _item, contact_id, _c in targets]
    previous: dict[int, dict[str, Any]] = {contact_id: {} for contact_id in ids}
    added: dict[int, dict[str, Any]] = {contact_id: {} for contact_id in ids}
    if not ids:
        return {}
    # tags: added to those the contact has
    wanted = [(contact_id, tag_id) for item, contact_id, _c in targets for tag_id in item.tag_ids]
    if wanted:
        have = set(
            session.execute(
                select(ContactTag.contact_id, ContactTag.tag_id).where(
                    ContactTag.contact_id.in_(sorted({c for c, _t in wanted}))
                )
            ).all()
        )
        new = [pair for pair in dict.fromkeys(wanted) if pair not in have]
        if new:
            session.execute(
                insert(ContactTag.__table__),
                [{"contact_id": c, "tag_id": t, "created_by": actor.user_id, "created_at": now} for c, t in new],
            )
            for contact_id, tag_id in new:
                added[contact_id].setdefault("tags", []).append(tag_id)
    # stage: replaced, with a history entry
    staged = [(contact_id, item.stage) for item, contact_id, _c in targets if item.stage is not None]
    if staged:
        current = dict(
            session.execute(
                select(ContactStage.contact_id, ContactStage.stage_id).where(
                    ContactStage.contact_id.in_([c for c, _s in staged])
                )
            ).all()
        )
        moves = [(c, stage) for c, stage in staged if current.get(c) != stage[0]]
        inserts = [{"contact_id": c, "stage_id": stage[0], "since": now} for c, stage in moves if c not in current]
        updates = [{"_id": c, "stage_id": stage[0], "since": now} for c, stage in moves if c in current]
        if inserts:
            session.execute(insert(ContactStage.__table__), inserts)
        if updates:
            table = ContactStage.__table__
            session.execute(
                update(table)
                .where(table.c.contact_id == bindparam("_id"))
                .values(stage_id=bindparam("stage_id"), since=bindparam("since")),
                updates,
            )
        if moves:
            session.execute(
                insert(StageChange.__table__),
                [
                    {
                        "contact_id": c,
                        "stage_id": stage[0],
                        "stage_name": stage[1],
                        "actor_id": actor.user_id,
                        "channel": actor.channel,
                        "changed_at": now,
                    }
                    for c, stage in moves
                ],
            )
            for c, _stage in moves:
                previous[c]["stage"] = current.get(c)
    # custom fields: replaced
    values = [
        (contact_id, field_id, stored) for item, contact_id, _c in targets for field_id, stored in item.custom.items()
    ]
    if values:
        table = ContactFieldValue.__table__
        pairs = [(c, f) for c, f, _s in values]
        old = {
            (row.contact_id, row.field_id): [
                row.text_value,
                row.number_value,
                row.date_value.isoformat() if row.date_value else None,
            ]
            for row in session.execute(select(table).where(table.c.contact_id.in_(sorted({c for c, _f in pairs}))))
            if (row.contact_id, row.field_id) in set(pairs)
        }
        session.execute(delete(table).where(tuple_(table.c.contact_id, table.c.field_id).in_(pairs)))
        rows = [
            {"contact_id": c, "field_id": f, "text_value": s[0], "number_value": s[1], "date_value": s[2]}
            for c, f, s in values
            if any(part is not None for part in s)
        ]
        if rows:
            session.execute(insert(table), rows)
        for c, f, _s in values:
            previous[c].setdefault("fields", {})[str(f)] = old.get((c, f))
    # consent: each word through the one consent command
    if job.consent_confirmed:
        for item, contact_id, contact in targets:
            if item.consent is None:
                continue
            before = contact or {
                "marketing_consent": "unknown",
                "opted_out_marketing": False,
                "opted_out_changed_at": None,
            }
            event = record_consent(session, actor, contact_id, item.consent, "import", ctx.evidence)
            if event is not None:
                previous[contact_id]["consent"] = {key: before.get(key) for key in CONSENT_COLUMNS}
                added[contact_id]["consent_event"] = event.id
    return {
        contact_id: (previous[contact_id], json.dumps(added[contact_id]) if added[contact_id] else None)
        for contact_id in ids
    }


# Readers kept open between steps, so a file is read once: job id -> (rows, rows already taken).
_readers: dict[int, tuple[Iterator[Row], int]] = {}
# Jobs this process runs: a running job of another process (the CLI) is left to it.
_owned: set[int] = set()


def _rows_from(job: ImportJob, data_dir: Path) -> Iterator[Row]:
    cached = _readers.pop(job.id, None)
    if cached is not None and cached[1] == job.processed:
        return cached[0]
    if cached is not None:
        _close(cached[0])
    info = FileInfo(job.format, job.encoding, job.delimiter, json.loads(job.headers))
    rows = iter_rows(stored_path(data_dir, job.stored_path or ""), info)
    for _ in itertools.islice(rows, job.processed):
        pass
    return rows


def _close(rows: Iterator[Row]) -> None:
    close = getattr(rows, "close", None)
    if close is not None:
        close()


def run_step(
    session: Session,
    actor: Actor,
    job_id: int,
    data_dir: Path,
    seconds: float = STEP_SECONDS,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Import the job's next rows for about `seconds` (a batch at least), committing each batch with the
    job's counts, so a crash loses nothing committed and the page shows the progress. Returns the rows
    handled; 0 once the job is over. The caller's session is committed here, batch by batch."""
    with write_lock(session):
        job = get_job(session, job_id)
        if job.state == "queued":
            job.state, job.started_at = "running", utcnow()
        session.commit()
    if job.state != "running":
        return 0
    _owned.add(job.id)
    handled = 0
    try:
        if job.total is None:
            info = FileInfo(job.format, job.encoding, job.delimiter, json.loads(job.headers))
            total = count_rows(stored_path(data_dir, job.stored_path or ""), info)
            with write_lock(session):
                job.total = total
                session.commit()
        handler = kind_of(job.kind or "contacts")
        with write_lock(session):  # reads on the worker's session take SQLite's write lock: let go at once
            ctx = handler.context(session, job)
            session.commit()
        rows = _rows_from(job, data_dir)
        deadline = time.monotonic() + seconds
        while True:
            chunk = list(itertools.islice(rows, BATCH))
            if not chunk:
                _close(rows)
                with write_lock(session):
                    _finish(session, actor, job, "done")
                    session.commit()
                return handled or 1
            prepared = handler.prepare(ctx, session, chunk)
            with write_lock(session):
                counts = handler.write(session, actor, ctx, prepared)
                job.processed += len(chunk)
                for name, count in counts.items():
                    setattr(job, name, (getattr(job, name) or 0) + count)
                if job.total is not None and job.processed > job.total:
                    job.total = job.processed
                session.commit()
            handled += len(chunk)
            if progress is not None:
                progress(job.processed, job.total or job.processed)
            if time.monotonic() >= deadline:
                _readers[job.id] = (rows, job.processed)
                return handled
    except UserError as refused:  # the file stopped being readable part-way: keep what was committed
        session.rollback()
        with write_lock(session):
            job = get_job(session, job_id)
            job.error = str(refused)
            _finish(session, actor, job, "failed")
            session.commit()
        return handled or 1


def fail(session: Session, actor: Actor, job_id: int, reason: str) -> None:
    """Mark a job failed after an unexpected error, keeping the rows already committed."""
    session.rollback()
    with write_lock(session):
        job = get_job(session, job_id)
        if job.state in ("queued", "running"):
            job.error = reason
            _finish(session, actor, job, "failed")
        session.commit()


def _finish(session: Session, actor: Actor, job: ImportJob, state: str) -> None:
    job.state, job.finished_at = state, utcnow()
    cached = _readers.pop(job.id, None)
    if cached is not None:
        _close(cached[0])
    _owned.discard(job.id)
    kind_of(job.kind or "contacts").finished(session, actor, job, state)


class ContactsKind(Kind):
    """Contacts as a kind of import: the rules at the top of this module."""

    name = "contacts"
    label = "Contacts"
    spec = mappings.CONTACTS
    mode = "upsert"

    def context(self, session: Session, job: ImportJob) -> Any:
        return _context(session, job)

    def prepare(self, ctx: Any, session: Session, rows: list[Row]) -> Any:
        return _parse_all(ctx, session, rows)

    def write(self, session: Session, actor: Actor, ctx: Any, prepared: Any) -> dict[str, int]:
        created, updated, rejected = _process(session, actor, ctx, *prepared)
        return {"created": created, "updated": updated, "rejected": rejected}

    def finished(self, session: Session, actor: Actor, job: ImportJob, state: str) -> None:
        record_by(
            session,
            actor,
            "contacts.import.finish",
            f"import {job.id}",
            {"state": state, "created": job.created, "updated": job.updated, "rejected": job.rejected},
        )
        record(session, ContactsImported(job.id, state, job.created, job.updated, job.rejected))


register(ContactsKind())


def erase_contact(session: Session, contact_id: int) -> None:
    """An anonymise eraser: what imports kept of the contact's old values (and what they added) is dropped,
    and the records become markers that undo counts as kept, so an undo never writes personal data or
    consent back onto an anonymised contact."""
    table = ImportChange.__table__
    session.execute(
        update(table)
        .where(table.c.contact_id == contact_id)
        .values(created=False, previous=json.dumps({"erased": True}), added=None)
    )


def remove_upload(data_dir: Path, job: ImportJob) -> None:
    """Delete a finished job's upload (it holds personal data and is no longer needed)."""
    if job.stored_path and job.state not in ("queued", "running"):
        try:
            stored_path(data_dir, job.stored_path).unlink(missing_ok=True)
        except UserError:
            pass


def next_job(session: Session) -> int | None:
    """The job the worker should work on: one it runs already, else the oldest undo asked for, else the
    oldest queued import."""
    running = session.scalar(
        select(ImportJob.id)
        .where(ImportJob.state == "running", ImportJob.id.in_(sorted(_owned) or [0]))
        .order_by(ImportJob.id)
    )
    if running is not None:
        return running
    undoing = session.scalar(select(ImportJob.id).where(ImportJob.state == "undoing").order_by(ImportJob.id).limit(1))
    if undoing is not None:
        return undoing
    return session.scalar(select(ImportJob.id).where(ImportJob.state == "queued").order_by(ImportJob.id).limit(1))


def work(session: Session, data_dir: Path) -> int:
    """The worker's task: a step of the current import or undo. A job whose run crashed is failed, not
    retried forever; its committed rows stay (and can be undone)."""
    with write_lock(session):
        job_id = next_job(session)
        state = session.scalar(select(ImportJob.state).where(ImportJob.id == job_id)) if job_id is not None else None
        session.commit()
    if job_id is None:
        return 0
    actor = Actor.system("worker")
    if state == "undoing":
        try:
            return undo_step(session, actor, job_id)
        except Exception:  # noqa: BLE001 - a broken undo must not retry forever; asking again carries on
            log.exception("undo of contact import %s failed", job_id)
            fail_undo(session, actor, job_id)
            return 1
    try:
        handled = run_step(session, actor, job_id, data_dir)
    except Exception:  # noqa: BLE001 - one broken file must not retry forever; the job records it failed
        log.exception("contact import %s failed", job_id)
        fail(session, actor, job_id, "The import stopped on an unexpected error; the rows before it were imported")
        handled = 1
    job = session.get(ImportJob, job_id)
    if job is not None and job.state not in ("queued", "running"):
        remove_upload(data_dir, job)
        with write_lock(session):
            purge_old_rejections(session)
            session.commit()
    return handled


def requeue_interrupted(session: Session) -> int:
    """At the worker's start: imports left running by a stopped process go back to the queue, to carry
    on from the last committed batch."""
    return session.execute(update(ImportJob).where(ImportJob.state == "running").values(state="queued")).rowcount


# --- undo ------------------------------------------------------------------------------------------


def undo_import(session: Session, actor: Actor, job_id: int) -> ImportJob:
    """Ask for a finished (or failed) import to be undone as a whole: the job becomes "undoing" and the
    worker (or the CLI, with undo_step) takes it back a batch at a time, never the request. An undo that
    stopped on an error (the job failed again) carries on from where it stopped when asked again."""
    job = get_job(session, job_id)
    kind_of(job.kind or "contacts").require(actor)
    if job.state in ("queued", "running"):
        raise Conflict("The import is still running: undo it once it has finished", field="import_id")
    if job.state == "undoing":
        raise Conflict("This import is being undone already", field="import_id")
    if job.state == "undone":
        raise Conflict("This import was undone already", field="import_id")
    total = session.scalar(select(func.count()).select_from(ImportChange).where(ImportChange.job_id == job.id))
    records = session.scalar(select(func.count()).select_from(ImportRecord).where(ImportRecord.job_id == job.id))
    # records are deleted as they are undone: the ones gone already count as done (job.removed)
    total = int(total or 0) + int(records or 0) + (job.removed or 0)
    job.state, job.undo_total = "undoing", max(total, job.undo_processed or 0)
    job.undo_processed = job.undo_processed or 0
    session.flush()
    kind = job.kind or "contacts"
    details = {"contacts": job.undo_total} if kind == "contacts" else {"records": job.undo_total}
    record_by(session, actor, f"{kind}.import.undo", f"import {job.id}", details)
    record(session, ContactsImportUndoQueued(job.id))
    return job


def undo_step(
    session: Session,
    actor: Actor,
    job_id: int,
    seconds: float = STEP_SECONDS,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Undo the job's next contacts for about `seconds` (a batch at least), set-based, each batch committed
    with the cursor and the counts, so a stopped undo loses nothing and carries on where it was. Returns
    the contacts handled; 0 once there is nothing to undo. The caller's session is committed here."""
    handled = 0
    deadline = time.monotonic() + seconds
    while True:
        with write_lock(session):
            # the job's row is locked first (MariaDB), so two processes on one undo take turns per batch
            job = session.scalar(
                select(ImportJob)
                .where(ImportJob.id == job_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if job is None or job.state != "undoing":
                session.commit()
                return handled
            removed = kind_of(job.kind or "contacts").undo_records(session, actor, job, UNDO_BATCH)
            if removed:  # a kind's own records (orders, products) go first, then the contacts it created
                job.removed = (job.removed or 0) + removed
                job.undo_processed = (job.undo_processed or 0) + removed
                if job.undo_total is None or job.undo_processed > job.undo_total:
                    job.undo_total = job.undo_processed
                done, total = job.undo_processed, job.undo_total
                session.commit()
                handled += removed
                if progress is not None:
                    progress(done, total)
                if time.monotonic() >= deadline:
                    return handled
                continue
            changes = session.execute(
                select(
                    ImportChange.id,
                    ImportChange.contact_id,
                    ImportChange.created,
                    ImportChange.previous,
                    ImportChange.added,
                )
                .where(ImportChange.job_id == job.id, ImportChange.id > (job.undo_cursor or 0))
                .order_by(ImportChange.id)
                .limit(UNDO_BATCH)
            ).all()
            if not changes:
                _finish_undo(session, actor, job)
                session.commit()
                return handled or 1
            counts = {"deleted": 0, "restored": 0, "kept": 0}
            _undo_created(session, [c for c in changes if c.created], counts)
            _undo_updated(session, actor, [c for c in changes if not c.created], counts)
            job.undo_cursor = changes[-1].id
            job.undo_processed = (job.undo_processed or 0) + len(changes)
            job.deleted = (job.deleted or 0) + counts["deleted"]
            job.restored = (job.restored or 0) + counts["restored"]
            job.kept = (job.kept or 0) + counts["kept"]
            if job.undo_total is None or job.undo_processed > job.undo_total:
                job.undo_total = job.undo_processed
            done, total = job.undo_processed, job.undo_total
            session.commit()
        handled += len(changes)
        if progress is not None:
            progress(done, total)
        if time.monotonic() >= deadline:
            return handled


def _finish_undo(session: Session, actor: Actor, job: ImportJob) -> None:
    job.state, job.undone_at = "undone", utcnow()
    counts = {"deleted": job.deleted or 0, "restored": job.restored or 0, "kept": job.kept or 0}
    kind = job.kind or "contacts"
    details = counts if kind == "contacts" else {**counts, "removed": job.removed or 0}
    record_by(session, actor, f"{kind}.import.undo.finish", f"import {job.id}", details)
    record(session, ContactsImportUndone(job.id, counts["deleted"], counts["restored"], counts["kept"]))
    for event in kind_of(kind).undone_events(job):
        record(session, event)


def fail_undo(session: Session, actor: Actor, job_id: int) -> None:
    """Stop an undo after an unexpected error (not retried forever): the job fails, keeping what was
    undone; asking for the undo again carries on from the last committed batch."""
    session.rollback()
    with write_lock(session):
        job = get_job(session, job_id)
        if job.state == "undoing":
            job.state = "failed"
            job.error = "The undo stopped on an unexpected error: undo again to carry on from where it stopped"
            record_by(session, actor, "contacts.import.undo.finish", f"import {job.id}", {"state": "failed"})
        session.commit()


def _undo_created(session: Session, changes: Sequence[Any], counts: dict[str, int]) -> None:
    ids = sorted({change.contact_id for change in changes})
    if not ids:
        return
    busy = set(session.scalars(select(Conversation.contact_id).where(Conversation.contact_id.in_(ids))))
    busy |= set(session.scalars(select(Message.contact_id).where(Message.contact_id.in_(ids))))
    existing = set(session.scalars(select(_c.id).where(_c.id.in_(ids))))
    doomed = [contact_id for contact_id in ids if contact_id not in busy and contact_id in existing]
    counts["kept"] += len([contact_id for contact_id in ids if contact_id in busy and contact_id in existing])
    if not doomed:
        return
    for model, column in (
        (ContactTag, ContactTag.contact_id),
        (ContactStage, ContactStage.contact_id),
        (StageChange, StageChange.contact_id),
        (ContactFieldValue, ContactFieldValue.contact_id),
        (ConsentEvent, ConsentEvent.contact_id),
    ):
        session.execute(delete(model).where(column.in_(doomed)).execution_options(synchronize_session=False))
    counts["deleted"] += session.execute(
        delete(Contact).where(Contact.id.in_(doomed)).execution_options(synchronize_session=False)
    ).rowcount


def _as_datetime(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _undo_updated(session: Session, actor: Actor, changes: Sequence[Any], counts: dict[str, int]) -> None:
    """Put back what the import changed on the contacts it updated, one statement per kind of write."""
    ids = sorted({change.contact_id for change in changes})
    if not ids:
        return
    now = utcnow()
    existing = set(session.scalars(select(_c.id).where(_c.id.in_(ids))))
    groups: dict[tuple[str, ...], dict[int, dict[str, Any]]] = {}
    consent_events: list[int] = []
    tags: list[tuple[int, int]] = []
    stages: dict[int, int | None] = {}
    field_pairs: list[tuple[int, int]] = []
    field_rows: dict[tuple[int, int], dict[str, Any]] = {}
    for change in changes:
        if change.contact_id not in existing:
            continue
        contact_id = change.contact_id
        previous = json.loads(change.previous or "{}")
        added = json.loads(change.added or "{}")
        if previous.get("merged") or previous.get("erased"):
            # merged into another contact, or anonymised since: nothing of it is written back
            counts["kept"] += 1
            continue
        columns = dict(previous.get("columns") or {})
        if "consent" in previous:
            consent = dict(previous["consent"])
            consent["opted_out_marketing"] = bool(consent.get("opted_out_marketing"))
            columns.update(consent)
        if "opted_out_changed_at" in columns:
            columns["opted_out_changed_at"] = _as_datetime(columns["opted_out_changed_at"])
        if columns:
            groups.setdefault(tuple(sorted(columns)), {})[contact_id] = columns
        if added.get("consent_event"):
            consent_events.append(int(added["consent_event"]))
        tags += [(contact_id, int(tag_id)) for tag_id in added.get("tags") or []]
        if "stage" in previous:
            stages[contact_id] = previous["stage"]
        for field_id, old in (previous.get("fields") or {}).items():
            key = (contact_id, int(field_id))
            field_pairs.append(key)
            field_rows.pop(key, None)
            if old is not None:
                text_value, number_value, date_value = old
                field_rows[key] = {
                    "contact_id": contact_id,
                    "field_id": int(field_id),
                    "text_value": text_value,
                    "number_value": number_value,
                    "date_value": datetime.fromisoformat(date_value).date() if date_value else None,
                }
        counts["restored"] += 1
    if consent_events:
        session.execute(
            delete(ConsentEvent)
            .where(ConsentEvent.id.in_(sorted(set(consent_events))))
            .execution_options(synchronize_session=False)
        )
    for keys, rows in groups.items():
        # one executemany per set of columns: one prepared statement, and nothing batch-sized in the
        # statement cache (a CASE of UNDO_BATCH values per batch would fill it)
        session.execute(
            update(Contact.__table__)
            .where(_c.id == bindparam("_id"))
            .values({**{key: bindparam(key) for key in keys}, "updated_at": now})
            .execution_options(synchronize_session=False),
            [{"_id": contact_id, **row} for contact_id, row in rows.items()],
        )
    if tags:
        session.execute(
            delete(ContactTag)
            .where(tuple_(ContactTag.contact_id, ContactTag.tag_id).in_(sorted(set(tags))))
            .execution_options(synchronize_session=False)
        )
    if stages:
        _restore_stages(session, actor, stages, now)
    if field_pairs:
        table = ContactFieldValue.__table__
        session.execute(delete(table).where(tuple_(table.c.contact_id, table.c.field_id).in_(sorted(set(field_pairs)))))
        if field_rows:
            session.execute(insert(table), list(field_rows.values()))


def _restore_stages(session: Session, actor: Actor, stages: dict[int, int | None], now: datetime) -> None:
    """Each contact back on the stage it had (none, or one deleted since: no stage), with a history entry."""
    wanted = sorted({stage_id for stage_id in stages.values() if stage_id is not None})
    names = dict(session.execute(select(Stage.id, Stage.name).where(Stage.id.in_(wanted))).all()) if wanted else {}
    target = {contact_id: (stage_id if stage_id in names else None) for contact_id, stage_id in stages.items()}
    table = ContactStage.__table__
    current = set(session.scalars(select(table.c.contact_id).where(table.c.contact_id.in_(sorted(target)))))
    cleared = sorted(
        contact_id for contact_id, stage_id in target.items() if stage_id is None and contact_id in current
    )
    if cleared:
        session.execute(delete(table).where(table.c.contact_id.in_(cleared)))
    moved = [{"_id": c, "stage_id": s, "since": now} for c, s in target.items() if s is not None and c in current]
    if moved:
        session.execute(
            update(table)
            .where(table.c.contact_id == bindparam("_id"))
            .values(stage_id=bindparam("stage_id"), since=bindparam("since")),
            moved,
        )
    placed = [
        {"contact_id": c, "stage_id": s, "since": now} for c, s in target.items() if s is not None and c not in current
    ]
    if placed:
        session.execute(insert(table), placed)
    session.execute(
        insert(StageChange.__table__),
        [
            {
                "contact_id": contact_id,
                "stage_id": stage_id,
                "stage_name": names.get(stage_id) if stage_id is not None else None,
                "actor_id": actor.user_id,
                "channel": actor.channel,
                "changed_at": now,
            }
            for contact_id, stage_id in target.items()
        ],
    )


# --- merges ----------------------------------------------------------------------------------------


def move_changes(session: Session, kept_id: int, merged_id: int) -> None:
    """A merge's mover: what imports recorded of the merged contact now points at the kept one, so an
    undo still reaches it. Undo never deletes data that was there without the import: a created-contact
    record stays "created" only when both contacts were created by that import; otherwise the one moved
    over marks the kept contact as kept, and the kept contact's own becomes so too. An "updated" record of
    the merged contact becomes such a marker as well: its old values are the merged contact's, and undo
    would otherwise write them over the kept contact."""
    table = ImportChange.__table__
    rows = session.execute(
        select(table.c.id, table.c.job_id, table.c.contact_id, table.c.created).where(
            table.c.contact_id.in_([kept_id, merged_id])
        )
    ).all()
    if not any(row.contact_id == merged_id for row in rows):
        return
    created = {(row.job_id, row.contact_id) for row in rows if row.created}
    marker = json.dumps({"merged": True})
    for row in rows:
        if not row.created:
            if row.contact_id == merged_id:  # its old values are the merged contact's: undo must not write them
                session.execute(update(table).where(table.c.id == row.id).values(previous=marker, added=None))
            continue
        other = merged_id if row.contact_id == kept_id else kept_id
        if (row.job_id, other) in created:  # both new in that import: the kept one's record deletes it
            if row.contact_id == merged_id:
                session.execute(delete(table).where(table.c.id == row.id))
            continue
        session.execute(update(table).where(table.c.id == row.id).values(created=False, previous=marker, added=None))
    session.execute(update(table).where(table.c.contact_id == merged_id).values(contact_id=kept_id))
