"""Contacts → Import (for now a page of the Data and security group of Settings): choose what the file holds
(contacts, products, an order history: sigdesk.imports.kinds), upload it, map its columns with a preview of its
first rows, start the import, and follow it on its own page, which can be left and
revisited; from there the refused rows download as CSV and the import can be undone.

The upload is checked (size, real type, encoding, header) before the mapping form shows; the form
carries the stored upload's random name, and start_import checks everything again. The job page polls
`importStatus` (imports.js) while the worker runs the import, or its undo.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for

from sigdesk.contacts.fields import default_country
from sigdesk.errors import UserError
from sigdesk.imports import commands, mapping, services
from sigdesk.imports.commands import custom_definitions
from sigdesk.imports.kinds import KIND_NAMES, PERMISSIONS, kind_of, may_import_any
from sigdesk.imports.reading import FileInfo, inspect
from sigdesk.imports.schemas import ImportData, ImportPath
from sigdesk.openapi import ui_call
from sigdesk.roles import can
from sigdesk.web import acting, actor, app_config, db_session, requires, wants_json, writing

bp = Blueprint("imports", __name__, url_prefix="/admin/imports")

UPLOAD_ENDPOINTS = ("imports.upload", "imports_api.create_import")
ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with byte-order mark)",
    "utf-16": "UTF-16 (Excel's Unicode text)",
    "cp1252": "Windows-1252 (Western European)",
}
MODES = (
    ("upsert", "Create new contacts and update existing ones"),
    ("create", "Only create new contacts (rows matching a contact are refused)"),
    ("update", "Only update existing contacts (rows matching none are refused)"),
)


def allow_large_uploads() -> None:
    """Before any hook reads the body: imports take files up to 50 MB (the app's other forms far less),
    and a larger one is refused with a message that says the limit, before it is read. Only for a user who
    may import (signed in, or by an API token): anyone else keeps the app's small limit, so an anonymous
    request cannot make the server take in 50 MB before the login and CSRF checks refuse it."""
    if request.endpoint not in UPLOAD_ENDPOINTS:
        return
    user = actor()
    if user is None or not may_import_any(user.role):
        return
    limit = services.MAX_UPLOAD + 1024 * 1024  # the file plus the form's other fields
    if request.content_length is not None and request.content_length > limit:
        raise UserError(services.too_large_message(), status=413, field="file")
    request.max_content_length = limit


LABELS = {
    "owner": "owner (a user's email)",
    "tags": "tags (separated by , or ;)",
    "stage": "stage (by name)",
    "ordered_at": "ordered_at (date, or date and time)",
    "amount": "amount (the line's total)",
    "order_ref": "order_ref (lines with one ref make one order)",
    "price": "price (e.g. 12.50)",
    "active": "active (yes/no)",
    "reorder_days": "reorder_days (typical interval)",
}


def _kind(value: str | None) -> str:
    """The kind asked for (contacts when none); an unknown one is refused naming `kind`, one the user's role
    may not import with 403."""
    handler = kind_of(value or "contacts")
    handler.require(acting())
    return handler.name


def job_for_user(import_id: int) -> Any:
    """The import, when the user's role may import its kind (each kind has its own permission)."""
    found = services.get_job(db_session(), import_id)
    kind_of(found.kind or "contacts").require(acting())
    return found


def _choices(custom: dict[str, Any], kind: str = "contacts") -> list[tuple[str, str]]:
    spec = kind_of(kind).spec
    choices = [(mapping.IGNORE, "— ignore —")]
    choices += [(name, LABELS.get(name, name)) for name in spec.fields]
    if not spec.custom:
        return choices
    choices += [(mapping.CUSTOM_PREFIX + key, f"custom: {getattr(d, 'label', key)}") for key, d in custom.items()]
    return choices


def _index(refused: UserError | None = None, kind: str | None = None):
    session = db_session()
    user = actor()
    allowed = [name for name in KIND_NAMES if user is not None and can(user.role, PERMISSIONS[name])]
    kind = kind if kind in allowed else (allowed[0] if allowed else "contacts")
    page = render_template(
        "imports/index.html",
        kind=kind,
        kinds=[(name, kind_of(name).label) for name in allowed],
        jobs=services.recent_jobs(session),
        refused=str(refused) if refused else None,
        limit_mb=services.MAX_UPLOAD // (1024 * 1024),
    )
    return page, (refused.status if refused else 200)


def _mapping_page(
    stored: str, file_name: str, info: FileInfo, refused: UserError | None = None, kind: str = "contacts"
):
    session = db_session()
    handler = kind_of(kind)
    custom = custom_definitions(session) if handler.spec.custom else {}
    if refused is not None and request.form:
        chosen = [request.form.get(f"map-{index}", mapping.IGNORE) for index in range(len(info.headers))]
        typed = request.form
    else:
        chosen = [field for _i, _h, field in mapping.suggest(info.headers, custom, handler.spec)]
        typed = {}
    typed = {**handler.form_defaults(session), **typed}
    page = render_template(
        "imports/map.html",
        stored=stored,
        file_name=file_name,
        info=info,
        encoding_name=ENCODING_NAMES.get(info.encoding or "", info.encoding),
        delimiter_name={",": "commas", ";": "semicolons", "\t": "tabs"}.get(info.delimiter or "", info.delimiter),
        chosen=chosen,
        kind=kind,
        kind_label=handler.label,
        choices=_choices(custom, kind),
        modes=MODES,
        typed=typed,
        country=typed.get("country") or default_country(session) or "",
        refused={"message": str(refused), "field": refused.field} if refused else None,
    )
    return page, (refused.status if refused else 200)


@bp.get("/")
@requires("contacts.import")
def index():
    return _index(kind=request.args.get("kind"))


@bp.post("/upload")
@requires("contacts.import")
def upload():
    data_dir = app_config().data_dir
    try:
        kind = _kind(request.form.get("kind"))
    except UserError as refused:
        return _index(refused)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _index(UserError("Choose a CSV or Excel file to import", field="file"), kind)
    try:
        stored = services.save_upload(data_dir, upload.stream, upload.filename)
    except UserError as refused:
        return _index(refused, kind)
    path = services.private_dir(data_dir) / stored
    try:
        info = inspect(path, upload.filename)
    except UserError as refused:
        path.unlink(missing_ok=True)
        return _index(refused, kind)
    return _mapping_page(stored, upload.filename, info, kind=kind)


@bp.post("/start")
@requires("contacts.import")
def start():
    data_dir = app_config().data_dir
    stored = request.form.get("stored", "")
    file_name = request.form.get("file_name", "")
    try:
        kind = _kind(request.form.get("kind"))
        path = services.stored_path(data_dir, stored)
        info = inspect(path, file_name)
    except UserError as refused:
        return _index(refused)
    columns = [request.form.get(f"map-{index}", mapping.IGNORE) for index in range(len(info.headers))]
    if kind != "contacts":
        return _start_kind(data_dir, stored, file_name, info, kind, columns)
    try:
        with writing() as session:
            job = commands.start_import(
                session,
                acting(),
                data_dir,
                stored,
                file_name,
                mode=request.form.get("mode", "upsert"),
                country=request.form.get("country") or None,
                consent_confirmed=bool(request.form.get("consent_confirmed")),
                consent_source=request.form.get("consent_source"),
                columns=columns,
            )
    except UserError as refused:
        if wants_json():
            raise
        return _mapping_page(stored, file_name, info, refused)
    return redirect(url_for("imports.job", import_id=job.id))


def _start_kind(data_dir: Any, stored: str, file_name: str, info: FileInfo, kind: str, columns: list[str]):
    names = kind_of(kind).form_options()
    options = {name: request.form[name] for name in names if request.form.get(name)}
    try:
        with writing() as session:
            job = commands.start_kind_import(
                session, acting(), data_dir, stored, file_name, kind, options=options, columns=columns
            )
    except UserError as refused:
        if wants_json():
            raise
        return _mapping_page(stored, file_name, info, refused, kind)
    return redirect(url_for("imports.job", import_id=job.id))


@bp.get("/<int:import_id>")
@requires("contacts.import")
def job(import_id: int):
    found = job_for_user(import_id)
    return render_template("imports/job.html", job=found, data=ImportData.of(found))


@bp.get("/<import_id>/status")
@requires("contacts.import")
@ui_call("importStatus", (200, ImportData), path=ImportPath, errors=(404,))
def status(import_id: int):
    response = jsonify(ImportData.of(job_for_user(import_id)).model_dump(mode="json"))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<int:import_id>/errors")
@requires("contacts.import")
def errors(import_id: int):
    return errors_download(import_id)


def errors_download(import_id: int) -> Response:
    """The refused rows as a CSV download (the page's link and the API's operation), streamed from a
    session of its own: the request's is closed before the body is sent."""
    found = job_for_user(import_id)
    response = Response(
        services.streamed_error_csv(current_app.extensions["sigdesk"].database.sessionmaker, found.id),
        mimetype="text/csv",
    )
    response.headers.set("Content-Disposition", "attachment", filename=services.errors_file_name(found))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:import_id>/undo")
@requires("contacts.import")
def undo(import_id: int):
    try:
        with writing() as session:
            commands.undo_import(session, acting(), import_id)
    except UserError as refused:
        if wants_json():
            raise
        flash(str(refused))
        return redirect(url_for("imports.job", import_id=import_id))
    flash("Undoing the import: you can leave this page, the undo carries on.")
    return redirect(url_for("imports.job", import_id=import_id))
