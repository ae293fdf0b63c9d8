"""Admin → Exports: the business's data as a download, and one contact's data on request."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for

from sigdesk.contacts import commands as contacts
from sigdesk.exports import personal
from sigdesk.exports import services as exports
from sigdesk.exports.services import FORMATS, WHAT, ExportError
from sigdesk.web import acting, app_config, error_response, requires, writing

bp = Blueprint("exports", __name__, url_prefix="/admin/exports")


def _send(path: Path, name: str, mimetype: str):
    response = send_file(path, as_attachment=True, download_name=name, mimetype=mimetype)
    response.call_on_close(lambda: path.unlink(missing_ok=True))
    return response


def _temp_path(suffix: str) -> Path:
    handle = tempfile.NamedTemporaryFile(prefix="sigdesk-export-", suffix=suffix, delete=False)
    handle.close()
    path = Path(handle.name)
    path.unlink()
    return path


@bp.get("/")
@requires("conversations.view_all")
def index():
    return render_template("exports/index.html", kinds=WHAT, formats=FORMATS)


@bp.post("/download")
@requires("conversations.view_all")
def download():
    what = request.form.get("what", "")
    fmt = request.form.get("format", "")
    zipped = what == "all"
    suffix = ".zip" if zipped else (".csv" if fmt == "csv" else ".jsonl")
    path = _temp_path(suffix)
    try:
        exports.run(
            current_app.extensions["sigdesk"].database, acting(), what, fmt, path, bom=bool(request.form.get("bom"))
        )
    except ExportError as exc:
        return error_response(400, str(exc))
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    mimetype = "application/zip" if zipped else ("text/csv" if fmt == "csv" else "application/x-ndjson")
    return _send(path, f"sigdesk-{what}-{stamp}{suffix}", mimetype)


def _contact_id() -> int | None:
    text = request.form.get("contact_id", "").strip()
    return int(text) if text.isdigit() else None


@bp.post("/contact")
@requires("conversations.view_all")
def contact_download():
    contact_id = _contact_id()
    if contact_id is None:
        return error_response(400, "Give the contact's number (ID).")
    path = _temp_path(".zip")
    try:
        personal.download_contact(
            current_app.extensions["sigdesk"].database, acting(), contact_id, path, app_config().data_dir
        )
    except ExportError as exc:
        return error_response(404, str(exc))
    return _send(path, f"sigdesk-contact-{contact_id}.zip", "application/zip")


@bp.post("/contact/anonymise")
@requires("security.manage")
def contact_anonymise():
    contact_id = _contact_id()
    if contact_id is None:
        return error_response(400, "Give the contact's number (ID).")
    if request.form.get("confirm") != "ANONYMISE":
        return error_response(400, "Type ANONYMISE to confirm: this cannot be undone.")
    with writing() as session:
        doomed = contacts.anonymise(session, acting(), contact_id, app_config().data_dir)
    removed = contacts.remove_files(doomed)
    flash(f"Contact {contact_id} anonymised; {removed} media files deleted.")
    return redirect(url_for("exports.index"))
