"""One contact's data: everything about them in a zip, for access and portability requests.

Erasing a contact is sigdesk.contacts.commands.anonymise; the Exports page offers both.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.contacts.services import ContactData
from sigdesk.db import Database, write_lock
from sigdesk.models import Contact, Conversation, Message, MessageStatusEvent, Reaction
from sigdesk.exports.services import ExportError, create_private, plain_values, safe_cell


def _plain(model_row) -> dict:
    return plain_values({column.key: getattr(model_row, column.key) for column in model_row.__table__.columns})


def _contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ExportError(f"There is no contact {contact_id}", 404, field="contact_id")
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
        "contact": [plain_values(ContactData.of(contact).model_dump())],
        "conversations": [
            _plain(c) for c in session.scalars(select(Conversation).where(Conversation.contact_id == contact_id))
        ],
        "messages": [_plain(m) for m in messages],
        "message_statuses": [_plain(s) for s in statuses],
        "reactions": [_plain(r) for r in session.scalars(select(Reaction).where(Reaction.contact_id == contact_id))],
    }


def export_contact(session: Session, contact_id: int, out_path: Path, data_dir: Path | None = None) -> dict[str, int]:
    """A zip with every record about the contact as JSON and CSV, and their media files when data_dir is given;
    readable by its owner only (0600), and its CSV cells never run as formulas (services.safe_cell)."""
    out_path = Path(out_path)
    if out_path.exists():
        raise ExportError(f"{out_path} already exists; choose another file name")
    data = contact_data(session, contact_id)
    partial = out_path.with_name(out_path.name + ".partial")
    partial.unlink(missing_ok=True)  # left by an export that was cut short
    try:
        with (
            create_private(partial) as handle,
            zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ):
            archive.writestr("contact.json", json.dumps(data, ensure_ascii=False, indent=1))
            for name, rows in data.items():
                if not rows:
                    continue
                text = io.StringIO()
                writer = csv.DictWriter(text, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows({k: "" if v is None else safe_cell(v) for k, v in row.items()} for row in rows)
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
