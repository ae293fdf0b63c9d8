"""The team inbox: one page with three panes, and the HTML fragments and JSON calls its script uses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.auth.roles import can
from sigdesk.connect.services import client_or_none
from sigdesk.media.services import UploadRefused, upload_checked
from sigdesk.conversations.services import AGENTS_SEE_ALL, agents_see_all, window_closes_at, window_open
from sigdesk.inbox import format as fmt
from sigdesk.inbox import services
from sigdesk.inbox.services import InboxError
from sigdesk.message_templates.services import variables as template_variables
from sigdesk.models import Conversation, MediaState, Message, User
from sigdesk.outbound import services as outbound
from sigdesk.settings import services as settings
from sigdesk.web import actor, app_config, cipher, db_session, error_response, publish_event, requires, writing
from sigdesk.whatsapp.media import LIMITS, kind_for_mime, store_media

log = logging.getLogger(__name__)

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

T = TypeVar("T")
CAPTIONED = ("image", "video", "document")
EMOJI = ("👍", "❤️", "😂", "😮", "😢", "🙏", "😊", "😀", "😉", "😍", "🤔", "😅", "👏", "🙌", "👌", "✅", "❌", "⭐",
         "🎉", "🔥", "💯", "📦", "🚚", "🕐", "📍", "📞", "✉️", "💳", "🧾", "🎁", "🛒", "☕", "🍰", "🌹", "👋", "🙂")


@bp.errorhandler(InboxError)
def inbox_error(error: InboxError):
    db_session().rollback()
    return error_response(error.status, str(error))


@bp.app_template_filter("whatsapp")
def _whatsapp_filter(text: str | None):
    return fmt.whatsapp(text)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"fmt": fmt, "fmt_initials": fmt.initials, "fmt_preview": fmt.preview_text, "window_of": _window_of,
            "base_url": url_for("inbox.index")}


def _window_of(conversation: Conversation) -> dict[str, Any]:
    closes = window_closes_at(conversation)
    return {"open": window_open(conversation), "closes": closes.isoformat() if closes else ""}


def _publish(kind: str, conversation: Conversation, **data: Any) -> None:
    """Tell every open window, after the commit (see sigdesk.events)."""
    publish_event(kind, conversation.id, assignee_id=conversation.assignee_id, **data)


def _write(change: Callable[[Session], T]) -> T:
    """Run a change under the SQLite write lock in a fresh transaction and commit it."""
    with writing() as session:
        return change(session)


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InboxError("Send a JSON object with Content-Type: application/json")
    return body


def _conversation(session: Session, conversation_id: int) -> Conversation:
    return services.get_conversation(session, actor(), conversation_id)[0]


def _int(name: str) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit() or len(text) > 18:
        raise InboxError(f"'{name}' must be a message id")
    return int(text)


# --- pages and fragments -----------------------------------------------------------------------


@bp.get("/")
@requires("app.use")
def index():
    session = db_session()
    user = actor()
    filters = services.Filters.parse(request.args)
    page = services.list_page(session, user, filters)
    selected = request.args.get("c", "")
    return render_template(
        "inbox/index.html",
        page=page, filters=filters, labels=services.list_labels(session),
        unread=services.unread_total(session, user), selected=int(selected) if selected.isdigit() else None,
        focus=request.args.get("m", "") if request.args.get("m", "").isdigit() else "",
        team=_team(session), canned=services.list_canned(session), emoji=EMOJI,
        may_manage=can(user.role, "canned.manage"),
    )


@bp.get("/list")
@requires("app.use")
def conversation_list():
    session = db_session()
    user = actor()
    filters = services.Filters.parse(request.args)
    before = request.args.get("before")
    page = services.list_page(session, user, filters, services.Cursor.decode(before) if before else None)
    response = Response(render_template("inbox/_rows.html", page=page, filters=filters))
    response.headers["X-Unread-Total"] = str(services.unread_total(session, user))
    response.headers["Cache-Control"] = "no-store"
    return response


def _thread_context(session: Session, conversation: Conversation, page: services.Thread) -> dict[str, Any]:
    return {"conversation": conversation, "thread": page}


@bp.get("/c/<int:conversation_id>")
@requires("app.use")
def conversation(conversation_id: int):
    session = db_session()
    found, contact = services.get_conversation(session, actor(), conversation_id)
    page = services.thread(session, found, around=_int("around"))
    closes = window_closes_at(found)
    templates = services.approved_templates(session) if not window_open(found) else []
    return _fragment(render_template(
        "inbox/_thread.html", contact=contact, window_open=window_open(found), closes=closes,
        templates=[_template_option(template) for template in templates],
        **_thread_context(session, found, page)))


def _template_option(template) -> dict[str, Any]:
    texts = {str(c.get("type", "")).lower(): c.get("text") for c in services._components(template)}
    return {"id": template.id, "name": template.name, "language": template.language, "category": template.category,
            "variables": template_variables(template), "body": texts.get("body") or "", "header": texts.get("header") or ""}


@bp.get("/c/<int:conversation_id>/messages")
@requires("app.use")
def messages(conversation_id: int):
    session = db_session()
    found = _conversation(session, conversation_id)
    before, after = _int("before"), _int("after")
    if before is None and after is None:
        raise InboxError("Give 'before' or 'after'")
    page = services.thread(session, found, before=before, after=after)
    return _fragment(render_template("inbox/_items.html", **_thread_context(session, found, page)))


@bp.get("/c/<int:conversation_id>/messages/<int:message_id>")
@requires("app.use")
def message(conversation_id: int, message_id: int):
    session = db_session()
    found = _conversation(session, conversation_id)
    page = services.one_message(session, found, message_id)
    return _fragment(render_template("inbox/_items.html", **_thread_context(session, found, page)))


@bp.get("/c/<int:conversation_id>/notes/<int:note_id>")
@requires("app.use")
def note(conversation_id: int, note_id: int):
    session = db_session()
    found = _conversation(session, conversation_id)
    page = services.Thread([], notes=[services.get_note(session, found, note_id)])
    services._attach(session, found, page, notes=False)
    return _fragment(render_template("inbox/_items.html", **_thread_context(session, found, page)))


@bp.get("/c/<int:conversation_id>/panel")
@requires("app.use")
def panel(conversation_id: int):
    session = db_session()
    found, contact = services.get_conversation(session, actor(), conversation_id)
    assignee = session.get(User, found.assignee_id) if found.assignee_id else None
    return _fragment(render_template(
        "inbox/_panel.html", conversation=found, contact=contact, assignee=assignee, team=_team(session),
        labels=services.list_labels(session), on=services.labels_of(session, found),
        history=services.history(session, found), count=services.message_count(session, found),
        closes=window_closes_at(found), window_open=window_open(found), fmt=fmt,
    ))


def _fragment(html: str) -> Response:
    response = Response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


def _team(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.name)))


# --- sending -----------------------------------------------------------------------------------


def _queued(conversation_id: int, queue: Callable[[Session, Conversation], Message]):
    def change(session: Session):
        found = _conversation(session, conversation_id)
        try:
            return found, queue(session, found)
        except outbound.SendRefused:
            session.rollback()
            raise

    try:
        found, sent = _write(change)
    except outbound.SendRefused as exc:
        return error_response(422, str(exc))
    current_app.extensions["sigdesk"].worker.wake()
    _publish("message.created", found, message_id=sent.id)
    return jsonify(message_id=sent.id, status=sent.status), 202


def _reply_to(body: dict[str, Any]) -> str | None:
    value = body.get("reply_to")
    if value is not None and (not isinstance(value, str) or not value or len(value) > 255):
        raise InboxError("'reply_to' must be a message's wamid")
    return value


@bp.post("/c/<int:conversation_id>/send")
@requires("app.use")
def send(conversation_id: int):
    body = _body()
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InboxError("Write a message first")
    reply_to = _reply_to(body)
    user_id = actor().id
    return _queued(conversation_id, lambda session, found: outbound.queue(
        session, found, "text", {"body": text.strip(), "preview_url": "http" in text}, author_id=user_id, reply_to_wamid=reply_to))


@bp.post("/c/<int:conversation_id>/react")
@requires("app.use")
def react(conversation_id: int):
    body = _body()
    emoji = body.get("emoji")
    if not isinstance(emoji, str) or len(emoji) > 16:
        raise InboxError("Choose an emoji (or an empty one to take a reaction back)")
    target_id = body.get("message_id")
    user_id = actor().id

    def queue(session: Session, found: Conversation) -> Message:
        target = session.get(Message, target_id) if isinstance(target_id, int) else None
        if target is None or target.conversation_id != found.id or not target.wamid:
            raise InboxError("That message cannot take a reaction (it has not reached WhatsApp)", 404)
        return outbound.queue(session, found, "reaction", {"message_id": target.wamid, "emoji": emoji}, author_id=user_id)

    return _queued(conversation_id, queue)


@bp.post("/c/<int:conversation_id>/template")
@requires("app.use")
def send_template(conversation_id: int):
    body = _body()
    template_id = body.get("template_id")
    params = body.get("params") or {}
    if not isinstance(template_id, int) or not isinstance(params, dict):
        raise InboxError("Give 'template_id' and 'params' ({\"body\": [...], \"header\": [...]})")
    clean = {str(key): value for key, value in params.items() if isinstance(value, list)}
    user_id = actor().id
    return _queued(conversation_id, lambda session, found: outbound.queue(
        session, found, "template", services.template_content(session, template_id, clean), author_id=user_id))


@bp.post("/c/<int:conversation_id>/attachment")
@requires("app.use")
def attachment(conversation_id: int):
    """Check the file here (real type, size), upload it to Meta, keep a copy for the thread, queue the message."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InboxError("Choose a file to send")
    session = db_session()
    _conversation(session, conversation_id)
    kind = kind_for_mime(upload.mimetype)
    data = upload.read(LIMITS[kind] + 1)
    caption = (request.form.get("caption") or "").strip()
    reply_to = request.form.get("reply_to") or None
    try:
        media_id, check = upload_checked(session, cipher(), data, upload.mimetype, upload.filename, kind)
    except UploadRefused as exc:
        return error_response(exc.status, str(exc))
    mime = upload.mimetype or check.sniffed or "application/octet-stream"
    key = store_media(app_config().data_dir, data)
    content: dict[str, Any] = {"id": media_id}
    if caption and kind in CAPTIONED:
        content["caption"] = caption
    if kind == "document":
        content["filename"] = upload.filename[:240]
    user_id = actor().id

    def queue(session: Session, found: Conversation) -> Message:
        sent = outbound.queue(session, found, kind, content, author_id=user_id, reply_to_wamid=reply_to)
        sent.storage_key, sent.media_state, sent.mime_type = key, MediaState.READY.value, mime
        sent.filename, sent.file_size = upload.filename[:255], check.size
        session.flush()
        return sent

    return _queued(conversation_id, queue)


@bp.post("/c/<int:conversation_id>/read")
@requires("app.use")
def mark_read(conversation_id: int):
    def change(session: Session) -> Conversation:
        found = _conversation(session, conversation_id)
        outbound.mark_read(session, found, None, False)
        return found

    found = _write(change)
    session = db_session()
    if settings.get(session, cipher(), "whatsapp.read_receipts"):
        client = client_or_none(session, cipher())
        if client is not None:
            with client:
                outbound.send_read_receipt(session, found, client)
    _publish("conversation.updated", found)
    return jsonify(id=found.id, unread_count=0)


# --- team changes ------------------------------------------------------------------------------


@bp.post("/c/<int:conversation_id>/notes")
@requires("app.use")
def add_note(conversation_id: int):
    text = _body().get("body")
    user = actor()

    def change(session: Session):
        found = _conversation(session, conversation_id)
        return found, services.add_note(session, found, user, text if isinstance(text, str) else "")

    found, created = _write(change)
    _publish("note.created", found, note_id=created.id)
    return jsonify(note_id=created.id), 201


@bp.post("/c/<int:conversation_id>/assign")
@requires("app.use")
def assign(conversation_id: int):
    body = _body()
    user = actor()
    wanted = body.get("assignee_id")
    if wanted == "me":
        wanted = user.id
    if wanted is not None and (not isinstance(wanted, int) or isinstance(wanted, bool)):
        raise InboxError("'assignee_id' must be a team member's id, \"me\" or null")

    def change(session: Session):
        found = _conversation(session, conversation_id)
        previous = services.assign(session, found, wanted)
        if previous != wanted:
            name = session.get(User, wanted).name if wanted else None
            services.record_activity(session, found, user, f"{user.name} assigned this to {name}." if name
                                     else f"{user.name} unassigned this conversation.")
        return found, previous

    found, previous = _write(change)
    _publish("conversation.updated", found, previous_assignee_ids=(previous,))
    return jsonify(id=found.id, assignee_id=found.assignee_id)


@bp.post("/c/<int:conversation_id>/status")
@requires("app.use")
def set_status(conversation_id: int):
    body = _body()
    user = actor()
    status = body.get("status")
    until = _when(body.get("snoozed_until"))
    if not isinstance(status, str):
        raise InboxError("Give a 'status'")

    def change(session: Session):
        found = _conversation(session, conversation_id)
        before = found.status
        services.set_status(session, found, status, until)
        if before != status or until:
            words = {"open": "reopened", "pending": "marked this pending", "resolved": "resolved this conversation"}
            text = (f"{user.name} snoozed this until {until.isoformat(timespec='minutes')}." if status == "snoozed"
                    else f"{user.name} {words.get(status, status)}.")
            services.record_activity(session, found, user, text)
        return found

    found = _write(change)
    _publish("conversation.updated", found)
    return jsonify(id=found.id, status=found.status, snoozed_until=fmt.iso(found.snoozed_until) or None)


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InboxError("'snoozed_until' must be a date and time like 2030-01-31T09:00:00Z")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InboxError("'snoozed_until' must be a date and time like 2030-01-31T09:00:00Z") from exc
    if when.tzinfo is None:
        raise InboxError("'snoozed_until' needs a time zone (for example a trailing Z)")
    return when


@bp.post("/c/<int:conversation_id>/labels")
@requires("app.use")
def set_label(conversation_id: int):
    body = _body()
    label_id, on = body.get("label_id"), body.get("on")
    if not isinstance(label_id, int) or not isinstance(on, bool):
        raise InboxError("Give 'label_id' and 'on' (true or false)")

    def change(session: Session):
        found = _conversation(session, conversation_id)
        services.set_label(session, found, label_id, on)
        return found

    found = _write(change)
    _publish("conversation.updated", found)
    return jsonify(id=found.id, label_id=label_id, on=on)


# --- canned responses, labels and inbox settings (admins) --------------------------------------


@bp.get("/canned")
@requires("app.use")
def canned():
    rows = services.list_canned(db_session(), request.args.get("q", ""))
    return jsonify(canned=[{"id": row.id, "shortcut": row.shortcut, "body": row.body} for row in rows])


@bp.get("/settings")
@requires("canned.manage")
def inbox_settings():
    session = db_session()
    return render_template("inbox/settings.html", canned=services.list_canned(session), labels=services.list_labels(session),
                           agents_see_all=agents_see_all(session), may_settings=can(actor().role, "settings.manage"))


def _fields() -> dict[str, Any]:
    return (request.get_json(silent=True) or {}) if request.is_json else request.form.to_dict()


def _done(message: str, status: int = 200, **data: Any):
    if request.is_json:
        return jsonify(message=message, **data), status
    flash(message)
    return redirect(url_for("inbox.inbox_settings"))


@bp.post("/canned")
@requires("canned.manage")
def create_canned():
    fields = _fields()
    user = actor()
    row = _write(lambda session: services.create_canned(session, str(fields.get("shortcut") or ""), str(fields.get("body") or ""), user))
    return _done(f"Saved /{row.shortcut}.", 201, id=row.id, shortcut=row.shortcut)


@bp.post("/canned/<int:canned_id>")
@requires("canned.manage")
def update_canned(canned_id: int):
    fields = _fields()
    row = _write(lambda session: services.update_canned(session, canned_id, str(fields.get("shortcut") or ""), str(fields.get("body") or "")))
    return _done(f"Saved /{row.shortcut}.", id=row.id, shortcut=row.shortcut)


@bp.post("/canned/<int:canned_id>/delete")
@requires("canned.manage")
def delete_canned(canned_id: int):
    _write(lambda session: services.delete_canned(session, canned_id))
    return _done("Deleted the canned response.")


@bp.post("/labels")
@requires("labels.manage")
def create_label():
    fields = _fields()
    row = _write(lambda session: services.create_label(session, str(fields.get("name") or "")))
    return _done(f"Added the label {row.name}.", 201, id=row.id, name=row.name)


@bp.post("/labels/<int:label_id>/delete")
@requires("labels.manage")
def delete_label(label_id: int):
    _write(lambda session: services.delete_label(session, label_id))
    return _done("Deleted the label.")


@bp.post("/settings/visibility")
@requires("settings.manage")
def visibility():
    wide = str(_fields().get(AGENTS_SEE_ALL) or "").lower() in ("1", "true", "on", "yes")
    _write(lambda session: settings.set_value(session, cipher(), AGENTS_SEE_ALL, wide))
    return _done("Agents now see every conversation." if wide else "Agents see their own and unassigned conversations.",
                 agents_see_all=wide)

