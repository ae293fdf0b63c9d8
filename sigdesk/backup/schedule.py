"""Automatic backups into the backup folder, daily or weekly at a set time, while the app runs.

The time is the business's wall clock (Settings → General → time zone), as the Backups page says,
not this computer's: a server kept on UTC still backs up at 02:00 in the shop's town.

A backup is due when the latest scheduled moment has passed since the last successful one, so a
computer that was off at 02:00 backs up at the next start (catch-up) rather than skipping a day.
Turning the schedule on or changing it is not a missed run: the moments before the change were never
scheduled, so the first backup after it is at the next scheduled time, not at once.
The passphrase is a secret setting, stored encrypted with the data key like every other secret.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.backup import services as backups
from sigdesk.backup.format import BackupError, KdfParams
from sigdesk.config import Config
from sigdesk.crypto import Cipher
from sigdesk.db import Database, utcnow, write_lock
from sigdesk.general.clock import business_zone
from sigdesk.models import Setting
from sigdesk.settings import services as settings

log = logging.getLogger(__name__)

LAST_RUN = "_internal.backup_last_run"
LAST_ERROR = "_internal.backup_last_error"
CHECK_SECONDS = 60.0
RETRY_AFTER = timedelta(minutes=15)
SCHEDULE_KEYS = ("backup.schedule", "backup.time")


def latest_slot(now: datetime, clock: str, zone: ZoneInfo) -> datetime:
    """The most recent moment at `clock` (wall-clock time in `zone`) not after now."""
    local = now.astimezone(zone)
    hour, minute = (int(part) for part in clock.split(":"))
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot > local:
        slot -= timedelta(days=1)
    return slot


def _internal(session: Session, key: str) -> str | None:
    row = session.get(Setting, key)
    return row.value if row is not None else None


def _set_internal(session: Session, key: str, value: str | None) -> None:
    row = session.get(Setting, key)
    if value is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(Setting(key=key, value=value, is_secret=False))
    else:
        row.value = value
    session.flush()


def schedule_changed_at(session: Session) -> datetime | None:
    """When the schedule was last turned on or changed (its settings rows are stamped when they change)."""
    stamps = [row.updated_at for key in SCHEDULE_KEYS if (row := session.get(Setting, key)) is not None]
    return max(stamps, default=None)


def is_due(session: Session, cipher: Cipher, now: datetime) -> bool:
    schedule = settings.get(session, cipher, "backup.schedule")
    if schedule == "off":
        return False
    slot = latest_slot(now, settings.get(session, cipher, "backup.time"), business_zone(session))
    last = _internal(session, LAST_RUN)
    last_run = datetime.fromisoformat(last) if last is not None else None
    changed = schedule_changed_at(session)
    if changed is not None and (last_run is None or last_run < changed):
        return changed < slot
    if last_run is None:
        return True
    return last_run < (slot if schedule == "daily" else slot - timedelta(days=6))


def run_scheduled(
    database: Database, config: Config, cipher: Cipher, now: datetime | None = None, kdf: KdfParams | None = None
) -> Path | None:
    """Make the backup if one is due; returns its path, or None when none was due."""
    now = now or utcnow()
    with database.session() as session:
        if not is_due(session, cipher, now):
            return None
        folder = settings.get(session, cipher, "backup.folder")
        passphrase = settings.get(session, cipher, "backup.passphrase")
        zone = business_zone(session)
    worker = Actor.system("worker")
    try:
        if not folder:
            raise BackupError("Automatic backups are on but no backup folder is set")
        if not passphrase:
            raise BackupError("Automatic backups are on but no backup passphrase is set")
    except BackupError as exc:
        backups.failed(database, worker, None, exc)
        _remember_error(database, now, exc)
        raise
    out = Path(folder) / f"sigdesk-{now.astimezone(zone).strftime('%Y%m%d-%H%M%S')}.sigdesk-backup"
    try:
        backups.run(database, config, worker, passphrase, out, kdf=kdf)
    except BackupError as exc:
        _remember_error(database, now, exc)
        raise
    with write_lock(database.engine), database.session() as session:
        _set_internal(session, LAST_RUN, now.isoformat())
        _set_internal(session, LAST_ERROR, None)
    log.info("scheduled backup written: %s", out)
    return out


def _remember_error(database: Database, now: datetime, exc: BackupError) -> None:
    with write_lock(database.engine), database.session() as session:
        _set_internal(session, LAST_ERROR, f"{now.isoformat()} {exc}")


class BackupLoop:
    """The worker loop that checks once a minute; a failure waits a while before the next try."""

    def __init__(self, database: Database, config: Config, cipher: Cipher) -> None:
        self.database, self.config, self.cipher = database, config, cipher
        self.retry_at: datetime | None = None

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            now = utcnow()
            if self.retry_at is None or now >= self.retry_at:
                try:
                    run_scheduled(self.database, self.config, self.cipher, now)
                    self.retry_at = None
                except BackupError as exc:
                    log.warning("scheduled backup failed: %s", exc)
                    self.retry_at = now + RETRY_AFTER
            stop.wait(CHECK_SECONDS)


class ManualBackup:
    """ "Back up now" from the admin page: one backup at a time on its own thread, with progress to poll."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.state: dict = {"state": "idle"}

    def status(self) -> dict:
        with self._lock:
            return dict(self.state)

    def start(self, database: Database, config: Config, actor: Actor, passphrase: str, out: Path) -> bool:
        """False when a backup is already running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self.state = {"state": "running", "phase": "snapshot", "done": 0, "total": 1, "file": out.name}
            self._thread = threading.Thread(
                target=self._run, args=(database, config, actor, passphrase, out), name="sigdesk-backup", daemon=True
            )
            self._thread.start()
            return True

    def _progress(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self.state.update(phase=phase, done=done, total=total)

    def _run(self, database: Database, config: Config, actor: Actor, passphrase: str, out: Path) -> None:
        try:
            backups.run(database, config, actor, passphrase, out, progress=self._progress)
        except BackupError as exc:
            with self._lock:
                self.state = {"state": "failed", "file": out.name, "error": str(exc)}
        except Exception:  # noqa: BLE001 - reported on the page; the details go to the log
            log.exception("backup failed")
            with self._lock:
                self.state = {
                    "state": "failed",
                    "file": out.name,
                    "error": "The backup failed; the details are in the log.",
                }
        else:
            with self._lock:
                self.state = {"state": "done", "file": out.name}

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
