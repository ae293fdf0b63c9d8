"""Contact imports in the REST API (/api/v1): upload a file to import, follow it, read its refused rows,
undo it. Every write calls the same command as the page and the CLI."""

from __future__ import annotations

from flask import Blueprint, request

from sigdesk.imports import commands, mapping, services
from sigdesk.imports.schemas import ImportData, ImportPath, ImportUpload
from sigdesk.openapi import operation
from sigdesk.web import acting, app_config, requires, writing
from sigdesk.imports.views import errors_download, job_for_user

bp = Blueprint("imports_api", __name__, url_prefix="/api/v1")


@bp.post("/contact-imports")
@requires("contacts.import")
@operation("createContactImport", (202, ImportData), form=ImportUpload, errors=(413,))
def create_import():
    """Upload a CSV or Excel file of contacts to import in the background

    The file is checked (its real type, encoding, header and mapping) before the answer; the rows are
    imported by the background worker. Follow the import with getContactImport.
    """
    form: ImportUpload = request.context.form  # type: ignore[attr-defined]
    data_dir = app_config().data_dir
    given = mapping.parse_json(form.mapping)
    stored = services.save_upload(data_dir, form.file.stream, form.file.filename or "")
    try:
        with writing() as session:
            job = commands.start_import(
                session,
                acting(),
                data_dir,
                stored,
                form.file.filename or "",
                given,
                form.mode,
                form.country,
                form.consent_confirmed,
                form.consent_source,
            )
    except BaseException:
        (services.private_dir(data_dir) / stored).unlink(missing_ok=True)
        raise
    return ImportData.of(job), 202


@bp.get("/contact-imports/<import_id>")
@requires("contacts.import")
@operation("getContactImport", (200, ImportData), path=ImportPath, errors=(404,))
def get_import(import_id: int):
    """A contact import: its state (queued, running, done, failed, undone) and counts"""
    return ImportData.of(job_for_user(import_id))


@bp.get("/contact-imports/<import_id>/errors")
@requires("contacts.import")
@operation("getContactImportErrors", (200, None), path=ImportPath, errors=(404,))
def import_errors(import_id: int):
    """The rows the import refused, as CSV: their cells as read, the line, and why"""
    return errors_download(import_id)


@bp.post("/contact-imports/<import_id>/undo")
@requires("contacts.import")
@operation("undoContactImport", (202, ImportData), path=ImportPath, errors=(404, 409))
def undo_import(import_id: int):
    """Undo an import as a whole, in the background

    The import becomes "undoing" and the background worker deletes the contacts it created (those with
    conversations since are kept), puts back what it changed on the others and takes off the tags it
    added. Follow it with getContactImport (undo_processed of undo_total) until its state is "undone".
    """
    with writing() as session:
        job = commands.undo_import(session, acting(), import_id)
        data = ImportData.of(job)
    return data, 202
