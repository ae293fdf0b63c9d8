"""Automatic backups with the clock moved: due at the set time, once per period, caught up after a gap."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from sigdesk.backup import services as backups
from sigdesk.backup.format import BackupError, KdfParams
from sigdesk.actor import Actor
from sigdesk.backup.schedule import LAST_ERROR, latest_slot, run_scheduled
from sigdesk.db import utcnow
from sigdesk.models import AuditEvent, Setting
from sigdesk.settings import commands as settings_commands, services as settings

FAST = KdfParams(log2_n=4, r=1, p=1)
PASSPHRASE = "scheduled passphrase"


def local(*args) -> datetime:
    return datetime(*args).astimezone()


def configure(app, since: datetime | None = None, **values) -> None:
    """Store `values`; with `since`, as if the schedule had been set then (days ago, the app closed since)."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        for key, value in values.items():
            settings.set_text(session, state.cipher, key, str(value))
        session.flush()
        if since is not None:
            for key in ("backup.schedule", "backup.time"):
                row = session.get(Setting, key)
                if row is not None:
                    row.updated_at = since
        session.commit()


def choose(app, **values) -> None:
    """Save settings as the wizard and Settings → Backups do, now (the real clock stamps the change)."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings_commands.save(session, Actor.system("wizard"), state.cipher, values)
        session.commit()


def tick(app, now: datetime):
    state = app.extensions["sigdesk"]
    return run_scheduled(state.database, state.config, state.cipher, now, kdf=FAST)


def test_latest_slot_is_today_after_the_time_and_yesterday_before_it():
    zone = ZoneInfo("Europe/Berlin")

    def berlin(*args) -> datetime:
        return datetime(*args, tzinfo=zone)

    assert latest_slot(berlin(2026, 11, 23, 3, 0), "02:30", zone) == berlin(2026, 11, 23, 2, 30)
    assert latest_slot(berlin(2026, 11, 23, 2, 0), "02:30", zone) == berlin(2026, 11, 22, 2, 30)


def test_backups_run_at_the_set_time_in_the_business_time_zone_not_this_computers(app, tmp_path):
    kiritimati = ZoneInfo("Pacific/Kiritimati")  # UTC+14: the same wall-clock time is most of a day from UTC's
    configure(
        app,
        **{
            "since": datetime(2026, 11, 20, tzinfo=kiritimati),
            "general.timezone": kiritimati.key,
            "backup.folder": tmp_path,
            "backup.passphrase": PASSPHRASE,
            "backup.schedule": "daily",
            "backup.time": "02:00",
        },
    )
    # Set up days ago and never run since (the app was closed): caught up at once.
    assert tick(app, datetime(2026, 11, 23, 9, 0, tzinfo=kiritimati)) is not None
    assert tick(app, datetime(2026, 11, 24, 1, 59, tzinfo=kiritimati)) is None
    made = tick(app, datetime(2026, 11, 24, 2, 1, tzinfo=kiritimati))
    assert made is not None and made.name == "sigdesk-20261124-020100.sigdesk-backup"


def test_nothing_happens_while_the_schedule_is_off(app, tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    configure(app, **{"backup.folder": folder, "backup.passphrase": PASSPHRASE})
    assert tick(app, local(2026, 11, 23, 3, 0)) is None
    assert list(folder.iterdir()) == []


def test_daily_backups_run_once_per_day_and_catch_up_after_a_gap(app, tmp_path):
    configure(
        app,
        since=local(2026, 11, 20),
        **{
            "backup.folder": tmp_path,
            "backup.passphrase": PASSPHRASE,
            "backup.schedule": "daily",
            "backup.time": "02:00",
        },
    )
    first = tick(app, local(2026, 11, 23, 9, 0))  # set up days ago, never run since: caught up at once
    assert first is not None and first.parent == tmp_path
    assert backups.verify(first, PASSPHRASE)["tables"]["settings"]["rows"] >= 4
    assert tick(app, local(2026, 11, 23, 23, 0)) is None
    assert tick(app, local(2026, 11, 24, 1, 59)) is None
    assert tick(app, local(2026, 11, 24, 2, 1)) is not None
    # The app was closed for three days: one backup at the next start, not three.
    assert tick(app, local(2026, 11, 27, 18, 0)) is not None
    assert tick(app, local(2026, 11, 27, 18, 1)) is None
    assert len(list(tmp_path.glob("*.sigdesk-backup"))) == 3


def test_weekly_backups_wait_a_week(app, tmp_path):
    configure(
        app,
        since=local(2026, 11, 20),
        **{
            "backup.folder": tmp_path,
            "backup.passphrase": PASSPHRASE,
            "backup.schedule": "weekly",
            "backup.time": "02:00",
        },
    )
    assert tick(app, local(2026, 11, 23, 2, 5)) is not None
    assert tick(app, local(2026, 11, 29, 2, 5)) is None
    assert tick(app, local(2026, 11, 30, 2, 5)) is not None


def test_a_missing_folder_is_recorded_and_retried_later(app, tmp_path):
    configure(
        app,
        since=local(2026, 11, 20),
        **{"backup.folder": tmp_path / "unplugged-usb", "backup.passphrase": PASSPHRASE, "backup.schedule": "daily"},
    )
    with pytest.raises(BackupError, match="does not exist"):
        tick(app, local(2026, 11, 23, 9, 0))
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        assert "does not exist" in session.get(Setting, LAST_ERROR).value
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "backup.failed")).one()
    (tmp_path / "unplugged-usb").mkdir()
    assert tick(app, local(2026, 11, 23, 9, 5)) is not None
    with state.database.session() as session:
        assert session.get(Setting, LAST_ERROR) is None


@pytest.mark.database
def test_turning_the_schedule_on_is_not_a_missed_run_the_first_backup_is_at_the_next_time(app, tmp_path):
    """The newcomer chose "Every day" at 02:00 in the evening: nothing then, the first backup at 02:00."""
    now = utcnow()
    at = (now + timedelta(hours=3)).strftime("%H:%M")
    choose(
        app,
        **{
            "general.timezone": "UTC",
            "backup.folder": str(tmp_path),
            "backup.passphrase": PASSPHRASE,
            "backup.schedule": "daily",
            "backup.time": at,
        },
    )
    assert tick(app, now + timedelta(minutes=1)) is None
    assert tick(app, now + timedelta(hours=2, minutes=58)) is None
    first = tick(app, now + timedelta(hours=3, minutes=1))
    assert (
        first is not None
        and first.name == f"sigdesk-{(now + timedelta(hours=3, minutes=1)):%Y%m%d-%H%M%S}.sigdesk-backup"
    )
    # Closed for three days once the schedule existed: one catch-up backup at the next start.
    assert tick(app, now + timedelta(days=3, hours=4)) is not None
    assert tick(app, now + timedelta(days=3, hours=4, minutes=1)) is None
    assert len(list(tmp_path.glob("*.sigdesk-backup"))) == 2


@pytest.mark.database
def test_changing_the_schedule_is_not_a_missed_run_either(app, tmp_path):
    now = utcnow()
    configure(
        app,
        since=now - timedelta(days=10),
        **{
            "general.timezone": "UTC",
            "backup.folder": tmp_path,
            "backup.passphrase": PASSPHRASE,
            "backup.schedule": "weekly",
            "backup.time": (now - timedelta(hours=1)).strftime("%H:%M"),
        },
    )
    assert tick(app, now - timedelta(days=2)) is not None  # set up long ago: the weekly backup ran
    # Now daily, at a time that passed an hour ago: not a missed run, the next one is tomorrow at that time.
    choose(app, **{"backup.schedule": "daily", "backup.time": (now - timedelta(hours=1)).strftime("%H:%M")})
    assert tick(app, now + timedelta(minutes=1)) is None
    assert tick(app, now + timedelta(hours=22)) is None
    assert tick(app, now + timedelta(hours=23, minutes=1)) is not None


def test_the_passphrase_is_stored_encrypted(app):
    configure(app, **{"backup.passphrase": PASSPHRASE})
    with app.extensions["sigdesk"].database.session() as session:
        row = session.get(Setting, "backup.passphrase")
        assert row.is_secret and PASSPHRASE not in row.value


def test_the_backup_loop_runs_on_the_one_worker(app):
    assert "backups" in [loop.name for loop in app.extensions["sigdesk"].worker.loops]
