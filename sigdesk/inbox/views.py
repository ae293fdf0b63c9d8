"""The team inbox: one page with three panes, and the HTML fragments and JSON calls its script uses.

Every call's path, query string, body and JSON answer is declared in inbox/schemas.py and checked by
`ui_call()` (sigdesk/openapi.py): a wrong shape in is a 400 naming the field, an answer unlike its
declaration a 500. The calls are SigDesk's own, not the public API, so they are documented apart, at
/inbox/openapi.json.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from sigdesk.auth.services import active_users
from sigdesk.roles import can
from sigdesk.canned import services as canned_responses
from sigdesk.contacts import commands as contacts
from sigdesk.conversations import actions, commands
from sigdesk.crm.services import record_context
from sigdesk.conversations.services import AGENTS_SEE_ALL, agents_see_all, window_closes_at, window_open
from sigdesk.errors import UserError
from sigdesk.inbox import format as fmt
from sigdesk.inbox import services
from sigdesk.inbox.schemas import (
    FORM_POSTED,
    AddNote,
    Assign,
    Assigned,
    Attachment,
    CannedFields,
    CannedList,
    CannedPath,
    CannedQuery,
    CannedSaved,
    ContactSaved,
    ConversationPath,
    Done,
    LabelAdded,
    LabelFields,
    LabelPath,
    LabelSet,
    ListQuery,
    MarkedRead,
    MessagePath,
    MoreQuery,
    NoteAdded,
    NotePath,
    PageQuery,
    PanelContact,
    Queued,
    React,
    SendTemplate,
    SendText,
    SetLabel,
    SetStatus,
    StatusSet,
    ThreadQuery,
    VisibilityFields,
    VisibilitySaved,
)
from sigdesk.inbox.services import InboxError
from sigdesk.labels import services as labels
from sigdesk.media.services import upload_checked
from sigdesk.message_templates import services as message_templates
from sigdesk.models import Conversation, Message, User
from sigdesk.openapi import ui, ui_call
from sigdesk.settings import commands as settings_commands
from sigdesk.web import acting, actor, app_config, cipher, db_session, given, requires, writing
from sigdesk.whatsapp.media import LIMITS, kind_for_mime, store_media

log = logging.getLogger(__name__)

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

T = TypeVar("T")
CAPTIONED = ("image", "video", "document")
EMOJI = (
    "👍",
    "❤️",
    "😂",
    "😮",
    "😢",
    "🙏",
    "😊",
    "😀",
    "😉",
    "😍",
    "🤔",
    "😅",
    "👏",
    "🙌",
    "👌",
    "✅",
    "❌",
    "⭐",
    "🎉",
    "🔥",
    "💯",
    "📦",
    "🚚",
    "🕐",
    "📍",
    "📞",
    "✉️",
    "💳",
    "🧾",
    "🎁",
    "🛒",
    "☕",
    "🍰",
    "🌹",
    "👋",
    "🙂",
)


@bp.app_template_filter("whatsapp")
def _whatsapp_filter(text: str | None):
    return fmt.whatsapp(text)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "fmt": fmt,
        "fmt_initials": fmt.initials,
        "fmt_preview": fmt.preview_text,
        "window_of": _window_of,
        "base_url": url_for("inbox.index"),
    }


def _window_of(conversation: Conversation) -> dict[str, Any]:
    closes = window_closes_at(conversation)
    return {"open": window_open(conversation), "closes": closes.isoformat() if closes else ""}


def _write(change: Callable[[Session], T]) -> T:
    """Run a change under the SQLite write lock in a fresh transaction and commit it."""
    with writing() as session:
        return change(session)


def _conversation(session: Session, conversation_id: int) -> Conversation:
    return services.get_conversation(session, actor(), conversation_id)[0]


# --- pages and fragments -----------------------------------------------------------------------


@bp.get("/")
@requires("app.use")
@ui_call("inboxPage", query=PageQuery)
def index():
    session = db_session()
    user = actor()
    query = given(PageQuery)
    filters = query.filters()
    page = services.list_page(session, user, filters)
    return render_template(
        "inbox/index.html",
        page=page,
        filters=filters,
        labels=labels.list_labels(session),
        unread=services.unread_total(session, user),
        selected=query.c,
        focus=str(query.m) if query.m else "",
        team=_team(session),
        canned=canned_responses.list_canned(session),
        emoji=EMOJI,
        may_manage=can(user.role, "canned.manage"),
    )


@bp.get("/list")
@requires("app.use")
@ui_call("inboxList", query=ListQuery)
def conversation_list():
    session = db_session()
    user = actor()
    query = given(ListQuery)
    filters = query.filters()
    page = services.list_page(session, user, filters, query.before)
    response = Response(render_template("inbox/_rows.html", page=page, filters=filters))
    response.headers["X-Unread-Total"] = str(services.unread_total(session, user))
    response.headers["Cache-Control"] = "no-store"
    return response


def _thread_context(session: Session, conversation: Conversation, page: services.Thread) -> dict[str, Any]:
    return {"conversation": conversation, "thread": page}


@bp.get("/c/<conversation_id>")
@requires("app.use")
@ui_call("inboxThread", path=ConversationPath, query=ThreadQuery)
def conversation(conversation_id: int):
    session = db_session()
    found, contact = services.get_conversation(session, actor(), conversation_id)
    page = services.thread(session, found, around=given(ThreadQuery).around)
    closes = window_closes_at(found)
    templates = message_templates.approved(session) if not window_open(found) else []
    return _fragment(
        render_template(
            "inbox/_thread.html",
            contact=contact,
            window_open=window_open(found),
            closes=closes,
            templates=[message_templates.option(template) for template in templates],
            **_thread_context(session, found, page),
        )
    )


@bp.get("/c/<conversation_id>/messages")
@requires("app.use")
@ui_call("inboxMoreMessages", path=ConversationPath, query=MoreQuery)
def messages(conversation_id: int):
    session = db_session()
    found = _conversation(session, conversation_id)
    query = given(MoreQuery)
    if query.before is None and query.after is None:
        raise InboxError("Give 'before' or 'after'", field="before")
    page = services.thread(session, found, before=query.before, after=query.after)
    return _fragment(render_template("inbox/_items.html", **_thread_context(session, found, page)))


@bp.get("/c/<conversation_id>/messages/<message_id>")
@requires("app.use")
@ui_call("inboxMessage", path=MessagePath)
def message(conversation_id: int, message_id: int):
    session = db_session()
    found = _conversation(session, conversation_id)
    page = services.one_message(session, found, message_id)
    return _fragment(render_template("inbox/_items.html", **_thread_context(session, found, page)))


@bp.get("/c/<conversation_id>/notes/<note_id>")
@requires("app.use")
@ui_call("inboxNote", path=NotePath)
def note(conversation_id: int, note_id: int):
    session = db_session()
    found = _conversation(session, conversation_id)
    page = services.Thread([], notes=[actions.get_note(session, found, note_id)])
    services._attach(session, found, page, notes=False)
    return _fragment(render_template("inbox/_items.html", **_thread_context(session, found, page)))


@bp.get("/c/<conversation_id>/panel")
@requires("app.use")
@ui_call("inboxPanel", path=ConversationPath)
def panel(conversation_id: int):
    session = db_session()
    found, contact = services.get_conversation(session, actor(), conversation_id)
    assignee = session.get(User, found.assignee_id) if found.assignee_id else None
    return _fragment(
        render_template(
            "inbox/_panel.html",
            conversation=found,
            contact=contact,
            assignee=assignee,
            team=_team(session),
            labels=labels.list_labels(session),
            on=labels.labels_of(session, found),
            history=actions.history(session, found),
            count=actions.message_count(session, found),
            closes=window_closes_at(found),
            window_open=window_open(found),
            fmt=fmt,
            card=record_context(session, contact.id),
        )
    )


def _fragment(html: str) -> Response:
    response = Response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


def _team(session: Session) -> list[User]:
    return active_users(session)


@bp.get("/openapi.json")
@requires("app.use")
def calls():
    """The page's own calls, documented from the same declarations (not the public API: they may change)."""
    return jsonify(ui.document())


# --- sending and team changes: each one command (sigdesk.conversations.commands) -----------------


def _queued(command: Callable[[Session], Message]):
    """Run a send command and answer 202; the worker, woken by the event, sends it."""
    with writing() as session:
        sent = command(session)
    return jsonify(message_id=sent.id, status=sent.status), 202


@bp.post("/c/<conversation_id>/send")
@requires("app.use")
@ui_call("inboxSend", (202, Queued), path=ConversationPath, json=SendText)
def send(conversation_id: int):
    body = given(SendText)
    content = {"body": body.text.strip(), "preview_url": "http" in body.text}
    return _queued(lambda session: commands.send(session, acting(), conversation_id, "text", content, body.reply_to))


@bp.post("/c/<conversation_id>/react")
@requires("app.use")
@ui_call("inboxReact", (202, Queued), path=ConversationPath, json=React)
def react(conversation_id: int):
    body = given(React)
    return _queued(lambda session: commands.react(session, acting(), conversation_id, body.message_id, body.emoji))


@bp.post("/c/<conversation_id>/template")
@requires("app.use")
@ui_call("inboxSendTemplate", (202, Queued), path=ConversationPath, json=SendTemplate)
def send_template(conversation_id: int):
    body = given(SendTemplate)
    return _queued(
        lambda session: commands.send_template(session, acting(), conversation_id, body.template_id, body.params or {})
    )


@bp.post("/c/<conversation_id>/attachment")
@requires("app.use")
@ui_call("inboxAttachment", (202, Queued), path=ConversationPath, form=Attachment)
def attachment(conversation_id: int):
    """Check the file here (real type, size), upload it to Meta, keep a copy for the thread, queue the message."""
    form = given(Attachment)
    upload = form.file
    session = db_session()
    commands.find(session, acting(), conversation_id)
    kind = kind_for_mime(upload.mimetype)
    data = upload.read(LIMITS[kind] + 1)
    caption = form.caption.strip()
    media_id, check = upload_checked(session, cipher(), data, upload.mimetype, upload.filename, kind)
    stored = commands.StoredFile(
        store_media(app_config().data_dir, data),
        upload.mimetype or check.sniffed or "application/octet-stream",
        upload.filename,
        check.size,
    )
    content: dict[str, Any] = {"id": media_id}
    if caption and kind in CAPTIONED:
        content["caption"] = caption
    if kind == "document":
        content["filename"] = upload.filename[:240]
    return _queued(
        lambda session: commands.send(session, acting(), conversation_id, kind, content, form.reply_to, stored)
    )


@bp.post("/c/<conversation_id>/read")
@requires("app.use")
@ui_call("inboxMarkRead", (200, MarkedRead), path=ConversationPath)
def mark_read(conversation_id: int):
    with writing() as session:
        found = commands.mark_read(session, acting(), conversation_id)
    return jsonify(id=found.id, unread_count=0)


@bp.post("/c/<conversation_id>/contact")
@requires("contacts.edit")
@ui_call("inboxSaveContact", (200, ContactSaved), path=ConversationPath, json=PanelContact)
def save_contact(conversation_id: int):
    """The panel's quick edit of the record; the contact page edits the rest through the same command."""
    edit = given(PanelContact)
    with writing() as session:
        _found, contact = services.get_conversation(session, actor(), conversation_id)
        contacts.update_contact(session, acting(), contact.id, edit.model_dump(exclude_unset=True))
    return jsonify(contact_id=contact.id)


@bp.post("/c/<conversation_id>/notes")
@requires("app.use")
@ui_call("inboxAddNote", (201, NoteAdded), path=ConversationPath, json=AddNote)
def add_note(conversation_id: int):
    text = given(AddNote).body
    with writing() as session:
        created = commands.add_note(session, acting(), conversation_id, text)
    return jsonify(note_id=created.id), 201


@bp.post("/c/<conversation_id>/assign")
@requires("app.use")
@ui_call("inboxAssign", (200, Assigned), path=ConversationPath, json=Assign)
def assign(conversation_id: int):
    wanted = given(Assign).assignee_id
    with writing() as session:
        found = commands.assign(session, acting(), conversation_id, actor().id if wanted == "me" else wanted)
    return jsonify(id=found.id, assignee_id=found.assignee_id)


@bp.post("/c/<conversation_id>/status")
@requires("app.use")
@ui_call("inboxSetStatus", (200, StatusSet), path=ConversationPath, json=SetStatus)
def set_status(conversation_id: int):
    body = given(SetStatus)
    with writing() as session:
        found = commands.set_status(session, acting(), conversation_id, body.status, body.snoozed_until)
    return jsonify(id=found.id, status=found.status, snoozed_until=fmt.iso(found.snoozed_until) or None)


@bp.post("/c/<conversation_id>/labels")
@requires("app.use")
@ui_call("inboxSetLabel", (200, LabelSet), path=ConversationPath, json=SetLabel)
def set_label(conversation_id: int):
    body = given(SetLabel)
    with writing() as session:
        found = commands.set_label(session, acting(), conversation_id, body.label_id, body.on)
    return jsonify(id=found.id, label_id=body.label_id, on=body.on)


# --- canned responses, labels and inbox settings (admins) --------------------------------------


@bp.get("/canned")
@requires("app.use")
@ui_call("inboxCanned", (200, CannedList), query=CannedQuery)
def canned():
    rows = canned_responses.list_canned(db_session(), given(CannedQuery).q)
    return jsonify(canned=[{"id": row.id, "shortcut": row.shortcut, "body": row.body} for row in rows])


@bp.get("/settings")
@requires("canned.manage")
def inbox_settings():
    return _settings_page()


def _settings_page(refused: UserError | None = None, form: str = ""):
    """The page, or after a refused form post the page again with the message by that form and what was typed."""
    session = db_session()
    page = render_template(
        "inbox/settings.html",
        canned=canned_responses.list_canned(session),
        labels=labels.list_labels(session),
        agents_see_all=agents_see_all(session),
        may_settings=can(actor().role, "settings.manage"),
        refused={"form": form, "message": str(refused), "field": refused.field, "typed": request.form}
        if refused
        else None,
    )
    return page, (refused.status if refused else 200)


def _keeps_the_page(form: str):
    """A settings form post that is refused shows the page again, with the message by form `form` (formatted
    with the view's arguments) and what was typed; a JSON call gets the usual error answer."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(**kwargs):
            try:
                return view(**kwargs)
            except UserError as refused:
                if request.is_json:
                    raise
                return _settings_page(refused, form.format(**kwargs))

        return wrapper

    return decorate


def _done(message: str, status: int = 200, **data: Any):
    if request.is_json:
        return jsonify(message=message, **data), status
    flash(message)
    return redirect(url_for("inbox.inbox_settings"))


@bp.post("/canned")
@requires("canned.manage")
@ui_call("inboxCreateCanned", (201, CannedSaved), json=CannedFields, form=CannedFields, also=FORM_POSTED)
@_keeps_the_page("canned-new")
def create_canned():
    fields = given(CannedFields)
    user = actor()
    row = _write(lambda session: canned_responses.create_canned(session, fields.shortcut, fields.body, user))
    return _done(f"Saved /{row.shortcut}.", 201, id=row.id, shortcut=row.shortcut)


@bp.post("/canned/<canned_id>")
@requires("canned.manage")
@ui_call(
    "inboxUpdateCanned", (200, CannedSaved), path=CannedPath, json=CannedFields, form=CannedFields, also=FORM_POSTED
)
@_keeps_the_page("canned-{canned_id}")
def update_canned(canned_id: int):
    fields = given(CannedFields)
    row = _write(lambda session: canned_responses.update_canned(session, canned_id, fields.shortcut, fields.body))
    return _done(f"Saved /{row.shortcut}.", id=row.id, shortcut=row.shortcut)


@bp.post("/canned/<canned_id>/delete")
@requires("canned.manage")
@ui_call("inboxDeleteCanned", (200, Done), path=CannedPath, also=FORM_POSTED)
def delete_canned(canned_id: int):
    _write(lambda session: canned_responses.delete_canned(session, canned_id))
    return _done("Deleted the canned response.")


@bp.post("/labels")
@requires("labels.manage")
@ui_call("inboxCreateLabel", (201, LabelAdded), json=LabelFields, form=LabelFields, also=FORM_POSTED)
@_keeps_the_page("label-new")
def create_label():
    name = given(LabelFields).name
    row = _write(lambda session: labels.create_label(session, name))
    return _done(f"Added the label {row.name}.", 201, id=row.id, name=row.name)


@bp.post("/labels/<label_id>/delete")
@requires("labels.manage")
@ui_call("inboxDeleteLabel", (200, Done), path=LabelPath, also=FORM_POSTED)
def delete_label(label_id: int):
    _write(lambda session: labels.delete_label(session, label_id))
    return _done("Deleted the label.")


@bp.post("/settings/visibility")
@requires("settings.manage")
@ui_call("inboxVisibility", (200, VisibilitySaved), json=VisibilityFields, form=VisibilityFields, also=FORM_POSTED)
def visibility():
    wide = given(VisibilityFields).agents_see_all
    _write(lambda session: settings_commands.save(session, acting(), cipher(), {AGENTS_SEE_ALL: wide}))
    return _done(
        "Agents now see every conversation." if wide else "Agents see their own and unassigned conversations.",
        agents_see_all=wide,
    )
