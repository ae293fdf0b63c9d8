"""Admin → Exports: the business's data as a download, and one contact's data on request.

Contacts with every field (for all of them, a saved segment, or what the Contacts page chose) are exported at
/admin/exports/contacts/export: the Contacts page's "Export these" links there with ?ids=1,2,3 (a selection) or
?filter=<definition JSON>&q=<search> (what its filter finds); ?segment=<id or name> opens it on a segment.

A download is written into the data dir's private folder (services.private_dir, 0700; the file 0600), never
into the shared /tmp, and is gone once sent: see _Download. The contact to export or anonymise is picked by
name or number (the picker's call is `exportsContacts`); a refused form comes back with what was typed.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from sigdesk.contacts import commands as contacts
from sigdesk.contacts.services import ContactData
from sigdesk.errors import UserError
from sigdesk.exports import personal
from sigdesk.exports import services as exports
from sigdesk.exports.schemas import PICK_MAX, ContactChoices, ContactPickQuery
from sigdesk.exports.services import FORMATS, WHAT
from sigdesk.models import Contact, Segment
from sigdesk.openapi import ui_call
from sigdesk.paging import Cursor
from sigdesk.roles import can
from sigdesk.web import acting, app_config, db_session, requires, wants_json, writing

bp = Blueprint("exports", __name__, url_prefix="/admin/exports")

CHUNK = 256 * 1024
PICKED = 20  # contacts the page lists when the picker's search is sent without the page's script


class _Download:
    """A finished export sent in chunks, then gone. Where the system allows it (POSIX) the file is removed as
    soon as it is open, the open handle keeping it readable, so a cut connection or a crash mid-download leaves
    nothing on disk; elsewhere it is removed when the server closes the response, sent in full or not."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.handle = open(path, "rb")  # closed in close(), which the server calls
        except OSError:
            path.unlink(missing_ok=True)
            raise
        self.size = os.fstat(self.handle.fileno()).st_size
        if os.name == "posix":
            path.unlink()

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.handle.read(CHUNK):
            yield chunk

    def close(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


def _private_path(suffix: str) -> Path:
    """A new name in the private folder; random, so it tells nothing about whose data it holds."""
    return exports.private_dir(app_config().data_dir) / f"download-{secrets.token_hex(12)}{suffix}"


def _send(path: Path, name: str, mimetype: str) -> Response:
    download = _Download(path)
    response = Response(download, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=name)
    response.headers["Content-Length"] = str(download.size)
    response.headers["Cache-Control"] = "no-store"
    return response


def _contact_id(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else None


def _choices(form: str, typed: Any) -> list[ContactData]:
    """The contacts the page lists by form `form`: the one picked (if any) first, then those matching the search."""
    session = db_session()
    chosen_id = _contact_id(typed.get("contact_id", ""))
    chosen = session.get(Contact, chosen_id) if chosen_id else None
    listed = [ContactData.of(chosen)] if chosen is not None else []
    query = typed.get("contact_query", "")[:PICK_MAX]
    if query.strip():
        listed += [
            found for found in exports.pick_contacts(session, query, None, PICKED).items if found.id != chosen_id
        ]
    return listed


def _page(form: str = "", refused: UserError | None = None):
    """The page; after a form post that was refused (or a contact search sent without the page's script), the
    page again with the message by form `form`, what was typed, and the contacts matching the search."""
    typed = request.form if form else {}
    status = refused.status if refused else 200
    return render_template(
        "exports/index.html",
        kinds=WHAT,
        formats=FORMATS,
        form=form,
        typed=typed,
        refused={"form": form, "message": str(refused), "field": refused.field} if refused else None,
        choices=_choices(form, typed) if form in ("contact", "anonymise") else [],
        may_export_contacts=can(current_user.role, "contacts.export"),
        segments=_segments() if can(current_user.role, "contacts.export") else [],
    ), status


def _refused(refused: UserError, form: str):
    if wants_json():
        raise refused
    return _page(form, refused)


@bp.get("/")
@requires("conversations.view_all")
def index():
    return _page()


@bp.get("/contacts")
@requires("conversations.view_all")
@ui_call("exportsContacts", (200, ContactChoices), query=ContactPickQuery)
def contact_choices():
    query: ContactPickQuery = request.context.query  # type: ignore[attr-defined]
    cursor = Cursor.decode(query.cursor) if query.cursor else None
    found = exports.pick_contacts(db_session(), query.q, cursor, query.limit)
    response = jsonify(ContactChoices(items=found.items, next_cursor=found.next_cursor).model_dump(mode="json"))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/download")
@requires("conversations.view_all")
def download():
    what = request.form.get("what", "")
    fmt = request.form.get("format", "")
    zipped = what == "all"
    suffix = ".zip" if zipped else (".csv" if fmt == "csv" else ".jsonl")
    if what in ("contacts", "all") and not can(current_user.role, "contacts.export"):
        return _refused(UserError("Your role does not allow exporting contacts", 403, field="what"), "download")
    path = _private_path(suffix)
    try:
        exports.run(
            current_app.extensions["sigdesk"].database, acting(), what, fmt, path, bom=bool(request.form.get("bom"))
        )
    except UserError as refused:
        path.unlink(missing_ok=True)
        return _refused(refused, "download")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    mimetype = "application/zip" if zipped else ("text/csv" if fmt == "csv" else "application/x-ndjson")
    return _send(path, f"sigdesk-{what}-{stamp}{suffix}", mimetype)


# The Contacts page's "Export these" links here: ?ids=1,2,3 (its selection) or ?filter=<definition JSON>&q=<search>
SCOPES = ("all", "segment", "selection", "filter")


def _segments() -> list[tuple[int, str]]:
    """The saved segments (id, name) for the segment picker."""
    return [(row.id, row.name) for row in db_session().execute(select(Segment.id, Segment.name).order_by(Segment.name))]


def _scope_of(given: Any) -> str:
    """The choice of contacts made in the form; for a link from the Contacts page, what the link carries."""
    scope = given.get("scope", "")
    if scope:
        return scope
    if given.get("ids"):
        return "selection"
    if given.get("segment"):
        return "segment"
    return "filter" if given.get("filter") or given.get("q") else "all"


def _contact_scope(given: Any) -> tuple[str, exports.ContactScope]:
    """Which contacts the form (or the link from the Contacts page) asks for: refused, naming the field, when the
    segment, selection or filter cannot be read."""
    scope = _scope_of(given)
    if scope not in SCOPES and not scope.startswith("segment:"):
        raise UserError(f"Unknown choice of contacts {scope[:20]!r}; choose {', '.join(SCOPES)}", field="scope")
    if scope.startswith("segment:") or scope == "segment":  # the page's list names it in the choice: segment:ID
        segment = scope.removeprefix("segment:").strip() if scope != "segment" else given.get("segment", "").strip()
        if not segment:
            raise UserError("Choose the segment to export", field="segment")
        return "segment", exports.ContactScope(segment=segment)
    if scope == "selection":
        return scope, exports.ContactScope(ids=exports.parse_ids(given.get("ids", ""), "ids"))
    if scope == "filter":
        text = given.get("filter", "")
        try:
            definition = json.loads(text) if text.strip() else {}
        except ValueError:
            raise UserError("The filter is not a filter SigDesk can read (JSON expected)", field="filter") from None
        if not isinstance(definition, dict):
            raise UserError("The filter is not a filter SigDesk can read (a JSON object expected)", field="filter")
        return scope, exports.ContactScope(definition=definition, q=given.get("q", "")[:200])
    return scope, exports.ContactScope()


def _contacts_page(given: Any, refused: UserError | None = None):
    """The contacts export's page: the contacts chosen (a segment, the Contacts page's selection or filter, or
    all), format and byte-order mark; after a refused post, the same with the message by its field."""
    scope = _scope_of(given)
    selected = 0
    if given.get("ids"):
        try:
            selected = len(set(exports.parse_ids(given.get("ids", ""), "ids")))
        except UserError as bad:  # a link with a broken selection: said at once, by the field
            refused = refused or bad
    return render_template(
        "exports/contacts.html",
        formats=FORMATS,
        segments=_segments(),
        given=given,
        scope=scope,
        selected=selected,
        refused={"message": str(refused), "field": refused.field} if refused else None,
    ), (refused.status if refused else 200)


@bp.get("/contacts/export")
@requires("contacts.export")
def contacts_export_page():
    return _contacts_page(request.args)


@bp.post("/contacts/export")
@requires("contacts.export")
def contacts_export():
    fmt = request.form.get("format", "")
    suffix = ".csv" if fmt == "csv" else ".jsonl"
    path = _private_path(suffix)
    try:
        scope, chosen = _contact_scope(request.form)
        exports.run(
            current_app.extensions["sigdesk"].database,
            acting(),
            "contacts",
            fmt,
            path,
            bom=bool(request.form.get("bom")),
            contacts=chosen,
        )
    except UserError as refused:
        path.unlink(missing_ok=True)
        if wants_json():
            raise
        return _contacts_page(request.form, refused)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    name = f"sigdesk-contacts{'' if scope == 'all' else '-' + scope}-{stamp}{suffix}"
    return _send(path, name, "text/csv" if fmt == "csv" else "application/x-ndjson")


def _picked() -> int | None:
    """The contact picked in the form posted; None after a search sent without the page's script (the page lists
    the matches). Refused, keeping what was typed, when none was picked."""
    if request.form.get("find"):
        return None
    contact_id = _contact_id(request.form.get("contact_id", ""))
    if contact_id is None:
        raise UserError("Pick the contact: search by name or phone number, then choose them.", field="contact_id")
    return contact_id


@bp.post("/contact")
@requires("conversations.view_all")
def contact_download():
    try:
        contact_id = _picked()
        if contact_id is None:
            return _page("contact")
        path = _private_path(".zip")
        try:
            personal.download_contact(
                current_app.extensions["sigdesk"].database, acting(), contact_id, path, app_config().data_dir
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    except UserError as refused:
        return _refused(refused, "contact")
    return _send(path, f"sigdesk-contact-{contact_id}.zip", "application/zip")


@bp.post("/contact/anonymise")
@requires("security.manage")
def contact_anonymise():
    try:
        contact_id = _picked()
        if contact_id is None:
            return _page("anonymise")
        if request.form.get("confirm", "").strip() != "ANONYMISE":
            raise UserError("Type ANONYMISE to confirm: this cannot be undone.", field="confirm")
        with writing() as session:
            doomed = contacts.anonymise(session, acting(), contact_id, app_config().data_dir)
    except UserError as refused:
        return _refused(refused, "anonymise")
    removed = contacts.remove_files(doomed)
    flash(f"Contact {contact_id} anonymised; {removed} media files deleted.")
    return redirect(url_for("exports.index"))
