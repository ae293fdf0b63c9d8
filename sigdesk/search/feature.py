"""Full-text search of messages and contacts."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from sigdesk.events.outbox import Stored
from sigdesk.search import fts

# The events that say a message was written or changed (their payloads carry message_id).
MESSAGE_EVENTS = ("message.received", "message.updated", "message.queued")


def init_app(app: Flask) -> None:
    from sigdesk.search.views import bp

    app.register_blueprint(bp)
    outbox = app.extensions["sigdesk"].outbox
    outbox.register("search erasure", compact_after_erasure, ["contact.changed"])
    if app.extensions["sigdesk"].database.engine.dialect.name != "sqlite":  # SQLite's FTS5 needs no n-grams
        outbox.register("search grams", index_message_grams, MESSAGE_EVENTS)


def _erased(events: list[Stored]) -> list[int]:
    return [item.event.contact_id for item in events if "anonymised" in getattr(item.event, "fields", ())]


def compact_after_erasure(session: Session, events: list[Stored]) -> None:
    """After a contact was anonymised, drop their n-grams (MySQL) and merge the index so none of its pages
    keeps their words (fts.compact). Idempotent: doing it twice leaves the same index."""
    erased = _erased(events)
    if not erased:
        return
    for contact_id in erased:
        fts.forget_contact_grams(session, contact_id)
    session.commit()  # ends the worker's reading transaction too, which would hold back the checkpoint
    fts.compact(session.get_bind().engine)


def index_message_grams(session: Session, events: list[Stored]) -> int:
    """MySQL/MariaDB: keep the n-grams of messages in scripts without spaces (fts.grams) up to date.
    The newest messages are searched without them (MySQLSearch scans them), so this may lag a little.
    Returns how many messages it wrote for: most messages have no such words, and cost only a read."""
    new = [item.event.message_id for item in events if item.event.name != "message.updated"]
    changed = [item.event.message_id for item in events if getattr(item.event, "change", None) in ("edit", "revoke")]
    return fts.index_grams(session, new, changed)
