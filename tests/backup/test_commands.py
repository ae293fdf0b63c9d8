"""A backup run is one command: the Backups page, `sigdesk backup create` and the schedule all audit its start
and end and record backup.finished, differing only in who asked and by which way in."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from sigdesk.backup.format import BackupError, KdfParams
from sigdesk.backup.schedule import run_scheduled
from sigdesk.settings import services as settings
from tests.commanding import audit, cli, events, everything_recorded
from tests.conftest import csrf_from

pytestmark = pytest.mark.database

PASSPHRASE = "office backup passphrase"


def back_up_from_the_page(auth, folder):
    auth.post(
        "/admin/backups/settings",
        {"backup.folder": str(folder), "backup.passphrase": PASSPHRASE},
        form_page="/admin/backups/",
    )
    page = auth.client.get("/admin/backups/").get_data(as_text=True)
    assert auth.client.post("/admin/backups/create", data={"csrf_token": csrf_from(page)}).status_code == 302
    deadline = time.monotonic() + 60
    while (status := auth.client.get("/admin/backups/status").get_json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["state"] == "done", status
    return status["file"]


def test_the_backups_page_and_the_cli_record_the_same_run(app, auth, owner, tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    from_page = back_up_from_the_page(auth, folder)
    out = tmp_path / "by-hand.sigdesk-backup"
    cli(app, "backup", "create", "--out", str(out), "--passphrase-stdin", input=PASSPHRASE + "\n")

    for action in ("backup.started", "backup.created"):
        assert [(entry.target, entry.actor, entry.channel) for entry in audit(app, action)] == [
            (from_page, owner.email, "web"),
            (out.name, None, "cli"),
        ]
    assert events(app, "backup.finished") == [{"ok": True, "file": from_page}, {"ok": True, "file": out.name}]
    assert PASSPHRASE not in everything_recorded(app)


def test_a_failed_scheduled_run_is_audited_as_the_worker_and_finishes_not_ok(app, tmp_path):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "backup.schedule", "daily")
        settings.set_text(session, state.cipher, "backup.passphrase", PASSPHRASE)
        settings.set_text(session, state.cipher, "backup.folder", str(tmp_path / "unplugged"))
    with pytest.raises(BackupError):
        tomorrow = datetime.now().astimezone() + timedelta(days=1)  # the first run after the schedule is set
        run_scheduled(state.database, state.config, state.cipher, tomorrow, kdf=KdfParams(4, 1, 1))
    [failed] = audit(app, "backup.failed")
    assert (failed.actor, failed.channel) == (None, "worker") and "does not exist" in failed.detail["error"]
    assert events(app, "backup.finished") == [{"ok": False, "file": failed.target}]
