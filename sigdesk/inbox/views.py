"""The team inbox: one page with three panes, and the HTML fragments and JSON calls its script uses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.auth.roles import can
from sigdesk.canned import services as canned_responses
from sigdesk.conversations import actions, commands
from sigdesk.conversations.services import AGENTS_SEE_ALL, agents_see_all, window_closes_at, window_open
from sigdesk.inbox import format as fmt
from sigdesk.inbox import services
from sigdesk.inbox.services import InboxError
from sigdesk.labels import services as labels
from sigdesk.media.services import upload_checked
from sigdesk.message_templates import services as message_templates
from sigdesk.models import Conversation, Message, User
from sigdesk.settings import commands as settings_commands
from sigdesk.web import acting, actor, app_config, cipher, db_session, requires, writing
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
        page=page,
        filters=filters,
        labels=labels.list_labels(session),
        unread=services.unread_total(session, user),
        selected=int(selected) if selected.isdigit() else None,
        focus=request.args.get("m", "") if request.args.get("m", "").isdigit() else "",
        team=_team(session),
        canned=canned_responses.list_canned(session),
        emoji=EMOJI,
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
    page = services.Thread([], notes=[actions.get_note(session, found, note_id)])
    services._attach(session, found, page, notes=False)
    return _fragment(render_template("inbox/_items.html", **_thread_context(session, found, page)))


@bp.get("/c/<int:conversation_id>/panel")
@requires("app.use")
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
        )
    )


def _fragment(html: str) -> Response:
    response = Response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


def _team(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.name)))


# --- sending and team changes: each one command (sigdesk.conversations.commands) -----------------


def _queued(command: Callable[[Session], Message]):
    """Run a send command and answer 202; the worker, woken by the event, sends it."""
    with writing() as session:
        sent = command(session)
    return jsonify(message_id=sent.id, status=sent.status), 202


@bp.post("/c/<int:conversation_id>/send")
@requires("app.use")
def send(conversation_id: int):
    body = _body()
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InboxError("Write a message first", field="text")
    content = {"body": text.strip(), "preview_url": "http" in text}
    return _queued(
        lambda session: commands.send(session, acting(), conversation_id, "text", content, body.get("reply_to"))
    )


@bp.post("/c/<int:conversation_id>/react")
@requires("app.use")
def react(conversation_id: int):
    body = _body()
    return _queued(
        lambda session: commands.react(session, acting(), conversation_id, body.get("message_id"), body.get("emoji"))
    )


@bp.post("/c/<int:conversation_id>/template")
@requires("app.use")
def send_template(conversation_id: int):
    body = _body()
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise InboxError('Give \'params\' ({"body": [...], "header": [...]})', field="params")
    clean = {str(key): value for key, value in params.items() if isinstance(value, (list, dict))}
    return _queued(
        lambda session: commands.send_template(session, acting(), conversation_id, body.get("template_id"), clean)
    )


@bp.post("/c/<int:conversation_id>/attachment")
@requires("app.use")
def attachment(conversation_id: int):
    """Check the file here (real type, size), upload it to Meta, keep a copy for the thread, queue the message."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InboxError("Choose a file to send", field="file")
    session = db_session()
    commands.find(session, acting(), conversation_id)
    kind = kind_for_mime(upload.mimetype)
    data = upload.read(LIMITS[kind] + 1)
    caption = (request.form.get("caption") or "").strip()
    reply_to = request.form.get("reply_to") or None
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
    return _queued(lambda session: commands.send(session, acting(), conversation_id, kind, content, reply_to, stored))


@bp.post("/c/<int:conversation_id>/read")
@requires("app.use")
def mark_read(conversation_id: int):
    with writing() as session:
        found = commands.mark_read(session, acting(), conversation_id)
    return jsonify(id=found.id, unread_count=0)


@bp.post("/c/<int:conversation_id>/notes")
@requires("app.use")
def add_note(conversation_id: int):
    text = _body().get("body")
    with writing() as session:
        created = commands.add_note(session, acting(), conversation_id, text)
    return jsonify(note_id=created.id), 201


@bp.post("/c/<int:conversation_id>/assign")
@requires("app.use")
def assign(conversation_id: int):
    wanted = _body().get("assignee_id")
    with writing() as session:
        found = commands.assign(session, acting(), conversation_id, actor().id if wanted == "me" else wanted)
    return jsonify(id=found.id, assignee_id=found.assignee_id)


@bp.post("/c/<int:conversation_id>/status")
@requires("app.use")
def set_status(conversation_id: int):
    body = _body()
    until = _when(body.get("snoozed_until"))
    with writing() as session:
        found = commands.set_status(session, acting(), conversation_id, body.get("status"), until)
    return jsonify(id=found.id, status=found.status, snoozed_until=fmt.iso(found.snoozed_until) or None)


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    example = "'snoozed_until' must be a date and time like 2030-01-31T09:00:00Z"
    if not isinstance(value, str):
        raise InboxError(example, field="snoozed_until")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InboxError(example, field="snoozed_until") from exc
    if when.tzinfo is None:
        raise InboxError("'snoozed_until' needs a time zone (for example a trailing Z)", field="snoozed_until")
    return when


@bp.post("/c/<int:conversation_id>/labels")
@requires("app.use")
def set_label(conversation_id: int):
    body = _body()
    with writing() as session:
        found = commands.set_label(session, acting(), conversation_id, body.get("label_id"), body.get("on"))
    return jsonify(id=found.id, label_id=body.get("label_id"), on=body.get("on"))


# --- canned responses, labels and inbox settings (admins) --------------------------------------


@bp.get("/canned")
@requires("app.use")
def canned():
    rows = canned_responses.list_canned(db_session(), request.args.get("q", ""))
    return jsonify(canned=[{"id": row.id, "shortcut": row.shortcut, "body": row.body} for row in rows])


@bp.get("/settings")
@requires("canned.manage")
def inbox_settings():
    session = db_session()
    return render_template(
        "inbox/settings.html",
        canned=canned_responses.list_canned(session),
        labels=labels.list_labels(session),
        agents_see_all=agents_see_all(session),
        may_settings=can(actor().role, "settings.manage"),
    )


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
    row = _write(
        lambda session: canned_responses.create_canned(
            session, str(fields.get("shortcut") or ""), str(fields.get("body") or ""), user
        )
    )
    return _done(f"Saved /{row.shortcut}.", 201, id=row.id, shortcut=row.shortcut)


@bp.post("/canned/<int:canned_id>")
@requires("canned.manage")
def update_canned(canned_id: int):
    fields = _fields()
    row = _write(
        lambda session: canned_responses.update_canned(
            session, canned_id, str(fields.get("shortcut") or ""), str(fields.get("body") or "")
        )
    )
    return _done(f"Saved /{row.shortcut}.", id=row.id, shortcut=row.shortcut)


@bp.post("/canned/<int:canned_id>/delete")
@requires("canned.manage")
def delete_canned(canned_id: int):
    _write(lambda session: canned_responses.delete_canned(session, canned_id))
    return _done("Deleted the canned response.")


@bp.post("/labels")
@requires("labels.manage")
def create_label():
    fields = _fields()
    row = _write(lambda session: labels.create_label(session, str(fields.get("name") or "")))
    return _done(f"Added the label {row.name}.", 201, id=row.id, name=row.name)


@bp.post("/labels/<int:label_id>/delete")
@requires("labels.manage")
def delete_label(label_id: int):
    _write(lambda session: labels.delete_label(session, label_id))
    return _done("Deleted the label.")


@bp.post("/settings/visibility")
@requires("settings.manage")
def visibility():
    wide = str(_fields().get(AGENTS_SEE_ALL) or "").lower() in ("1", "true", "on", "yes")
    _write(lambda session: settings_commands.save(session, acting(), cipher(), {AGENTS_SEE_ALL: wide}))
    return _done(
        "Agents now see every conversation." if wide else "Agents see their own and unassigned conversations.",
        agents_see_all=wide,
    )
