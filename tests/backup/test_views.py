"""Admin → Backups through real HTTP requests with CSRF: settings, back up now, list, download, verify, delete."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from sigdesk.backup import services as backups
from sigdesk.models import AuditEvent, Setting
from sigdesk.settings import services as settings
from tests.conftest import csrf_from

PASSPHRASE = "office backup passphrase"


def save(auth, **values):
    return auth.post("/admin/backups/settings", values, form_page="/admin/backups/")


def actions(app) -> list[str]:
    with app.extensions["sigdesk"].database.session() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_only_owners_see_backups(auth, owner):
    assert auth.client.get("/admin/backups/").status_code == 200
    admin = auth.create_user("admin")
    auth.logout()
    auth.login(admin)
    assert auth.client.get("/admin/backups/").status_code == 403
    assert auth.client.get("/admin/backups/status").status_code == 403


def test_settings_are_saved_with_the_passphrase_encrypted_and_bad_values_refused(app, auth, owner, tmp_path):
    response = save(
        auth,
        **{
            "backup.folder": str(tmp_path),
            "backup.schedule": "daily",
            "backup.time": "3:15",
            "backup.passphrase": PASSPHRASE,
            "retention.backups_days": "14",
        },
    )
    assert response.status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        row = session.get(Setting, "backup.passphrase")
        assert row.is_secret and PASSPHRASE not in row.value
        assert session.get(Setting, "backup.time").value == "03:15"
    bad = save(auth, **{"backup.time": "25:00", "backup.folder": str(tmp_path / "nope")})
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "not a time of day" in page and "does not exist" in page
    blank = save(auth, **{"backup.passphrase": ""})
    assert blank.status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Setting, "backup.passphrase").value == row.value


def test_back_up_now_then_list_download_verify_and_delete(app, auth, owner, tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    save(auth, **{"backup.folder": str(folder), "backup.passphrase": PASSPHRASE})
    with app.extensions["sigdesk"].database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "general.timezone", "Pacific/Kiritimati")
    started = datetime.now(ZoneInfo("Pacific/Kiritimati"))
    page = auth.client.get("/admin/backups/").get_data(as_text=True)
    response = auth.client.post("/admin/backups/create", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    deadline = time.monotonic() + 30
    while (status := auth.client.get("/admin/backups/status").get_json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["state"] == "done", status
    name = status["file"]
    assert name.startswith(f"sigdesk-{started:%Y%m%d-%H}")  # named on the business's clock (UTC+14)
    assert backups.verify(folder / name, PASSPHRASE)["tables"]["users"]["rows"] == 1

    page = auth.client.get("/admin/backups/").get_data(as_text=True)
    assert name in page
    download = auth.client.get(f"/admin/backups/file/{name}")
    assert download.status_code == 200 and download.data == (folder / name).read_bytes()
    assert "attachment" in download.headers["Content-Disposition"]

    verified = auth.client.post(
        f"/admin/backups/file/{name}/verify", data={"csrf_token": csrf_from(page)}, follow_redirects=True
    )
    assert "is intact" in verified.get_data(as_text=True)
    gone = auth.client.post(f"/admin/backups/file/{name}/delete", data={"csrf_token": csrf_from(page)})
    assert gone.status_code == 302 and not (folder / name).exists()
    assert {"backup.started", "backup.created", "backup.downloaded", "backup.deleted"} <= set(actions(app))


def test_back_up_now_needs_a_folder_and_a_passphrase(auth, owner, tmp_path):
    page = auth.client.get("/admin/backups/").get_data(as_text=True)
    response = auth.client.post("/admin/backups/create", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 400 and "backup folder" in response.get_data(as_text=True)
    save(auth, **{"backup.folder": str(tmp_path)})
    response = auth.client.post("/admin/backups/create", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 400 and "passphrase" in response.get_data(as_text=True)


def test_files_outside_the_backup_folder_cannot_be_reached(auth, owner, tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    (tmp_path / "secret.sigdesk-backup").write_bytes(b"x")
    (folder / "notes.txt").write_bytes(b"x")
    save(auth, **{"backup.folder": str(folder)})
    for name in ("..%2Fsecret.sigdesk-backup", "notes.txt", "missing.sigdesk-backup"):
        assert auth.client.get(f"/admin/backups/file/{name}").status_code == 404


def test_posts_without_csrf_are_refused(auth, owner):
    assert auth.client.post("/admin/backups/create").status_code == 400


def test_a_guessable_passphrase_is_refused_with_a_message_naming_the_backup_passphrase(app, auth, owner):
    short = save(auth, **{"backup.passphrase": "12345678"})
    assert short.status_code == 400
    assert "The backup passphrase must be at least 10 characters long" in short.get_data(as_text=True)
    guessable = save(auth, **{"backup.passphrase": "qwertyuiop123"})
    assert guessable.status_code == 400
    assert "This backup passphrase is too easy to guess." in guessable.get_data(as_text=True)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Setting, "backup.passphrase") is None


def test_the_schedule_time_is_on_the_business_time_zone_named_on_the_page(app, auth, owner):
    with app.extensions["sigdesk"].database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "general.timezone", "Pacific/Kiritimati")
        session.commit()
    page = auth.client.get("/admin/backups/").get_data(as_text=True)
    assert "this computer" not in page
    assert "Time of day for automatic backups (business time zone: Pacific/Kiritimati" in page
