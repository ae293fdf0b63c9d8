"""Admin → Backups: back up now with progress, the schedule and folder, and the files in that folder.

Owner only: a backup holds everything, including the data key.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)

from sigdesk.backup import services as backups
from sigdesk.general.clock import business_zone
from sigdesk.backup.format import BackupError
from sigdesk.backup.schemas import BackupProgress
from sigdesk.backup.schedule import LAST_ERROR, LAST_RUN, ManualBackup
from sigdesk.models import Setting
from sigdesk.openapi import ui_call
from sigdesk.settings import commands as settings_commands, services as settings
from sigdesk.settings.specs import SPECS
from sigdesk.web import (
    Rejected,
    acting,
    app_config,
    cipher,
    db_session,
    error_response,
    requires,
    writing,
)

bp = Blueprint("backups", __name__, url_prefix="/admin/backups")

PERMISSION = "security.manage"
SETTING_KEYS = (
    "backup.folder",
    "backup.schedule",
    "backup.time",
    "backup.passphrase",
    "retention.backups_days",
    "retention.messages_days",
    "retention.audit_days",
    "retention.logins_days",
)
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.sigdesk-backup$")


def _runner() -> ManualBackup:
    return current_app.extensions.setdefault("sigdesk.manual_backup", ManualBackup())


def _folder() -> Path | None:
    folder = settings.get(db_session(), cipher(), "backup.folder")
    return Path(folder) if folder else None


def _listing(folder: Path | None) -> list[dict]:
    if folder is None or not folder.is_dir():
        return []
    files = []
    for path in folder.glob("*.sigdesk-backup"):
        if path.is_file() and FILE_NAME.match(path.name):
            info = path.stat()
            files.append(
                {
                    "name": path.name,
                    "size": info.st_size,
                    "modified": datetime.fromtimestamp(info.st_mtime).astimezone(),
                }
            )
    return sorted(files, key=lambda item: item["modified"], reverse=True)


def _file(name: str) -> Path:
    folder = _folder()
    if folder is None or not FILE_NAME.match(name) or not (folder / name).is_file():
        abort(404)
    return folder / name


@bp.get("/")
@requires(PERMISSION)
def index():
    dbs = db_session()
    values = {key: settings.get(dbs, cipher(), key) for key in SETTING_KEYS if key != "backup.passphrase"}
    folder = _folder()
    return render_template(
        "backup/index.html",
        specs=[SPECS[key] for key in SETTING_KEYS],
        values=values,
        errors={},
        passphrase_set=settings.is_set(dbs, "backup.passphrase"),
        zone=business_zone(dbs).key,
        files=_listing(folder),
        folder_missing=folder is not None and not folder.is_dir(),
        status=_runner().status(),
        last_run=(dbs.get(Setting, LAST_RUN) or Setting(value="")).value,
        last_error=(dbs.get(Setting, LAST_ERROR) or Setting(value="")).value,
    )


@bp.post("/settings")
@requires(PERMISSION)
def save_settings():
    folder = request.form.get("backup.folder", "").strip()
    folder_missing = bool(folder) and not Path(folder).is_dir()  # a drive may be slow to answer: before the lock
    try:
        with writing() as dbs:
            try:
                changed = settings_commands.save(
                    dbs, acting(), cipher(), settings_commands.from_form(SETTING_KEYS, request.form, blank_keeps=True)
                )
                errors: dict[str, str] = {}
            except settings_commands.SettingsRejected as rejected:
                errors = dict(rejected.errors)
            if folder_missing:
                errors["backup.folder"] = f"The folder {folder} does not exist (is the drive plugged in?)"
            if errors:
                raise Rejected(errors)
    except Rejected as rejected:
        values = {key: request.form.get(key, "") for key in SETTING_KEYS if key != "backup.passphrase"}
        return render_template(
            "backup/index.html",
            specs=[SPECS[key] for key in SETTING_KEYS],
            values=values,
            errors=rejected.detail,
            passphrase_set=settings.is_set(db_session(), "backup.passphrase"),
            zone=business_zone(db_session()).key,
            files=[],
            folder_missing=False,
            status=_runner().status(),
            last_run="",
            last_error="",
        ), 400
    flash("Backup settings saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("backups.index"))


@bp.post("/create")
@requires(PERMISSION)
def create_now():
    dbs = db_session()
    folder = _folder()
    passphrase = settings.get(dbs, cipher(), "backup.passphrase")
    if folder is None or not folder.is_dir():
        return error_response(400, "Choose an existing backup folder first.")
    if not passphrase:
        return error_response(400, "Set a backup passphrase first.")
    state = current_app.extensions["sigdesk"]
    out = folder / f"sigdesk-{datetime.now(business_zone(dbs)).strftime('%Y%m%d-%H%M%S')}.sigdesk-backup"
    if not _runner().start(state.database, app_config(), acting(), passphrase, out):
        return error_response(409, "A backup is already running.")
    flash("Backup started.")
    return redirect(url_for("backups.index"))


@bp.get("/status")
@requires(PERMISSION)
@ui_call("backupStatus", (200, BackupProgress))
def status():
    return jsonify(_runner().status())


@bp.get("/file/<name>")
@requires(PERMISSION)
def download(name: str):
    path = _file(name)
    with writing() as session:
        backups.downloaded(session, acting(), name)
    return send_from_directory(path.parent, path.name, as_attachment=True, mimetype="application/octet-stream")


@bp.post("/file/<name>/verify")
@requires(PERMISSION)
def verify(name: str):
    path = _file(name)
    passphrase = settings.get(db_session(), cipher(), "backup.passphrase")
    if not passphrase:
        return error_response(400, "Set the backup passphrase first; verifying needs it.")
    try:
        manifest = backups.verify(path, passphrase)
    except BackupError as exc:
        flash(f"{name}: {exc}", "error")
    else:
        rows = sum(entry["rows"] for entry in manifest["tables"].values())
        flash(f"{name} is intact: {rows} rows and {manifest['media']['files']} media files.")
    return redirect(url_for("backups.index"))


@bp.post("/file/<name>/delete")
@requires(PERMISSION)
def delete(name: str):
    path = _file(name)
    with writing() as session:
        backups.delete_file(session, acting(), path)
    flash(f"Deleted {name}.")
    return redirect(url_for("backups.index"))
