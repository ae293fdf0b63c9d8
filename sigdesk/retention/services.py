"""The daily purge that keeps only what the retention settings allow.

Each setting is a number of days; 0 keeps forever. Messages go with what holds their content:
status events, reactions, Meta's raw webhook deliveries of the same age (they contain message
bodies) and media files no remaining message points at. The purge runs on the one background
worker at most once a day and catches up at the first start after the app was closed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sigdesk.audit.services import record
from sigdesk.crypto import Cipher
from sigdesk.db import utcnow
from sigdesk.models import (
    AuditEvent,
    DeliveryState,
    LoginEvent,
    Message,
    MessageStatusEvent,
    Reaction,
    Setting,
    UploadedMedia,
    WebhookDelivery,
)
from sigdesk.settings import services as settings

log = logging.getLogger(__name__)

LAST_RUN = "_internal.retention_last_run"
INTERVAL = timedelta(days=1)
UPLOAD_LIFETIME = timedelta(days=30)  # Meta's media ids expire after 30 days; nothing can send one later
BATCH = 1000
BACKUP_SUFFIX = ".sigdesk-backup"


def purge_messages(session: Session, data_dir: Path, cutoff: datetime) -> dict[str, int]:
    keys: set[str] = set()
    deleted = 0
    while True:
        batch = session.execute(
            select(Message.id, Message.storage_key).where(Message.timestamp < cutoff).limit(BATCH)
        ).all()
        if not batch:
            break
        keys.update(key for _id, key in batch if key)
        session.execute(delete(Message).where(Message.id.in_([row_id for row_id, _key in batch])))
        deleted += len(batch)
    statuses = session.execute(delete(MessageStatusEvent).where(MessageStatusEvent.created_at < cutoff)).rowcount
    reactions = session.execute(delete(Reaction).where(Reaction.reacted_at < cutoff)).rowcount
    deliveries = session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.received_at < cutoff, WebhookDelivery.state != DeliveryState.RECEIVED.value
        )
    ).rowcount
    session.flush()
    files = _unlink_unused(session, data_dir, keys)
    return {
        "messages": deleted,
        "message_statuses": statuses,
        "reactions": reactions,
        "webhook_deliveries": deliveries,
        "media_files": files,
    }


def _unlink_unused(session: Session, data_dir: Path, keys: set[str]) -> int:
    """Files of these keys that no message and no recent upload still points at."""
    files = 0
    for key in sorted(keys):
        used = session.scalar(select(func.count()).select_from(Message).where(Message.storage_key == key)) or 0
        used += (
            session.scalar(select(func.count()).select_from(UploadedMedia).where(UploadedMedia.storage_key == key)) or 0
        )
        if used:
            continue
        try:
            (Path(data_dir) / key).unlink()
            files += 1
        except FileNotFoundError:
            pass
    return files


def purge_uploads(session: Session, data_dir: Path, cutoff: datetime) -> int:
    """Copies of files uploaded to Meta that were never sent and whose media id has expired."""
    rows = session.execute(
        select(UploadedMedia.id, UploadedMedia.storage_key).where(UploadedMedia.created_at < cutoff)
    ).all()
    if not rows:
        return 0
    session.execute(delete(UploadedMedia).where(UploadedMedia.id.in_([row_id for row_id, _key in rows])))
    session.flush()
    _unlink_unused(session, data_dir, {key for _id, key in rows})
    return len(rows)


def purge_backups(folder: Path, cutoff: datetime) -> int:
    """Backup files (by their name's suffix, never anything else) last written before cutoff."""
    removed = 0
    if not folder.is_dir():
        log.warning("backup folder %s is not available; old backups not purged", folder)
        return 0
    for path in folder.glob(f"*{BACKUP_SUFFIX}"):
        if path.is_file() and path.stat().st_mtime < cutoff.timestamp():
            path.unlink()
            removed += 1
    return removed


def purge(session: Session, cipher: Cipher, data_dir: Path, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    counts: dict[str, int] = {"expired_uploads": purge_uploads(session, data_dir, now - UPLOAD_LIFETIME)}
    days = settings.get(session, cipher, "retention.messages_days")
    if days:
        counts.update(purge_messages(session, data_dir, now - timedelta(days=days)))
    days = settings.get(session, cipher, "retention.audit_days")
    if days:
        counts["audit_events"] = session.execute(
            delete(AuditEvent).where(AuditEvent.at < now - timedelta(days=days))
        ).rowcount
    days = settings.get(session, cipher, "retention.logins_days")
    if days:
        counts["login_events"] = session.execute(
            delete(LoginEvent).where(LoginEvent.at < now - timedelta(days=days))
        ).rowcount
    days = settings.get(session, cipher, "retention.backups_days")
    folder = settings.get(session, cipher, "backup.folder")
    if days and folder:
        counts["backups"] = purge_backups(Path(folder), now - timedelta(days=days))
    counts = {name: count for name, count in counts.items() if count}
    if counts:
        record(session, "retention.purged", detail=counts)
        log.info("retention purge removed %s", counts)
    return counts


def run_daily(session: Session, cipher: Cipher, data_dir: Path, now: datetime | None = None) -> int:
    """The worker task: purge when the last purge is a day old (or never ran); else do nothing."""
    now = now or utcnow()
    row = session.get(Setting, LAST_RUN)
    if row is not None:
        try:
            if now - datetime.fromisoformat(row.value) < INTERVAL:
                return 0
        except ValueError:
            log.warning("unreadable last retention run; purging now")
    counts = purge(session, cipher, data_dir, now)
    if row is None:
        session.add(Setting(key=LAST_RUN, value=now.isoformat(), is_secret=False))
    else:
        row.value = now.isoformat()
    session.flush()
    return sum(counts.values())
