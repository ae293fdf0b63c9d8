"""One contact's data: everything about them in a zip (access and portability requests), or erased.

Anonymising keeps the rows, so counts, conversations and reports stay whole, but clears who the
contact is and what they said: identity fields, message bodies, captions, Meta's raw copies, file
names and the media files themselves (a file is deleted only when no other contact's message points
at the same content). The audit log records that it happened, never who it was.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import zipfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.events.catalogue import ContactChanged
from sigdesk.events.outbox import record as record_event
from sigdesk.db import Database, utcnow, write_lock
from sigdesk.models import Contact, Conversation, Message, MessageStatusEvent, Reaction
from sigdesk.exports.services import ExportError

log = logging.getLogger(__name__)

MESSAGE_CONTENT = ("text", "caption", "details", "raw", "payload", "filename", "media_id", "sha256", "storage_key")


def _plain(model_row) -> dict:
    values = {}
    for column in model_row.__table__.columns:
        value = getattr(model_row, column.key)
        values[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return values


def _contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ExportError(f"There is no contact {contact_id}")
    return contact


def contact_data(session: Session, contact_id: int) -> dict[str, list[dict]]:
    contact = _contact(session, contact_id)
    messages = session.scalars(select(Message).where(Message.contact_id == contact_id).order_by(Message.id)).all()
    wamids = [m.wamid for m in messages if m.wamid]
    statuses = (
        session.scalars(
            select(MessageStatusEvent).where(MessageStatusEvent.wamid.in_(wamids)).order_by(MessageStatusEvent.id)
        ).all()
        if wamids
        else []
    )
    return {
        "contact": [_plain(contact)],
        "conversations": [
            _plain(c) for c in session.scalars(select(Conversation).where(Conversation.contact_id == contact_id))
        ],
        "messages": [_plain(m) for m in messages],
        "message_statuses": [_plain(s) for s in statuses],
        "reactions": [_plain(r) for r in session.scalars(select(Reaction).where(Reaction.contact_id == contact_id))],
    }


def export_contact(session: Session, contact_id: int, out_path: Path, data_dir: Path | None = None) -> dict[str, int]:
    """A zip with every record about the contact as JSON and CSV, and their media files when data_dir is given."""
    out_path = Path(out_path)
    if out_path.exists():
        raise ExportError(f"{out_path} already exists; choose another file name")
    data = contact_data(session, contact_id)
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("contact.json", json.dumps(data, ensure_ascii=False, indent=1))
            for name, rows in data.items():
                if not rows:
                    continue
                text = io.StringIO()
                writer = csv.DictWriter(text, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
                archive.writestr(f"{name}.csv", text.getvalue().encode("utf-8-sig"))
            if data_dir is not None:
                for message in data["messages"]:
                    key = message.get("storage_key")
                    if key and (Path(data_dir) / key).is_file():
                        archive.write(Path(data_dir) / key, f"media/{message['id']}-{Path(key).name}")
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {name: len(rows) for name, rows in data.items()}


def download_contact(
    database: Database, actor: Actor, contact_id: int, out_path: Path, data_dir: Path
) -> dict[str, int]:
    """Everything about one person, as a command: written from a read-only session (the zip may hold
    media), then audited, since it is personal data leaving SigDesk."""
    with database.session(write=False) as session:
        written = export_contact(session, contact_id, out_path, data_dir)
    with write_lock(database.engine), database.session() as session:
        record_by(session, actor, "export.contact", f"contact {contact_id}")
    return written


def anonymise_contact(session: Session, actor: Actor, contact_id: int, data_dir: Path) -> list[Path]:
    """Erase the contact's identity and content. Returns the media files to delete once the caller has
    committed (remove_files), so a failed commit never leaves rows pointing at deleted files."""
    contact = _contact(session, contact_id)
    messages = session.scalars(select(Message).where(Message.contact_id == contact_id)).all()
    keys = {m.storage_key for m in messages if m.storage_key}
    wamids = [m.wamid for m in messages if m.wamid]
    for message in messages:
        for field in MESSAGE_CONTENT:
            setattr(message, field, None)
        if message.media_state:
            message.media_state = "failed"
    if wamids:
        session.execute(
            update(MessageStatusEvent)
            .where(MessageStatusEvent.wamid.in_(wamids))
            .values(recipient_id=None, errors=None, conversation=None, pricing=None, biz_opaque_callback_data=None)
        )
    session.execute(update(Reaction).where(Reaction.contact_id == contact_id).values(emoji=None))
    contact.wa_id = None
    contact.user_id = None
    contact.profile_name = None
    contact.display_name = f"Anonymised contact {contact.id}"
    contact.opted_out_marketing = True
    contact.opted_out_changed_at = utcnow()
    session.flush()
    doomed = []
    for key in sorted(keys):
        still_used = session.execute(
            select(func.count()).select_from(Message).where(Message.storage_key == key)
        ).scalar_one()
        if not still_used:
            doomed.append(Path(data_dir) / key)
    record_by(
        session,
        actor,
        "contact.anonymised",
        f"contact {contact.id}",
        {"messages": len(messages), "media_files": len(doomed)},
    )
    record_event(session, ContactChanged(contact.id, ("anonymised",)))
    log.info("contact %s anonymised", contact.id)
    return doomed


def remove_files(paths: list[Path]) -> int:
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
