"""REST API under /api/v1, authenticated by personal API tokens (or the browser session)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy.orm import Session

from sigdesk.api.openapi import document
from sigdesk.connect.services import client_or_none
from sigdesk.media.services import UploadRefused, upload_checked
from sigdesk.conversations import services as conversations
from sigdesk.message_templates import services as templates
from sigdesk.models import Message
from sigdesk.outbound import services as outbound
from sigdesk.settings import services as settings
from sigdesk.web import actor, cipher, db_session, error_response, public, requires, writing
from sigdesk.whatsapp.media import LIMITS

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _int_arg(name: str, default: int | None = None, low: int = 1, high: int = 10**12) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        abort(400, description=f"'{name}' must be a whole number from {low} to {high}")
    return int(text)


def _visible_conversation(conversation_id: int):
    conversation = conversations.get_visible(db_session(), actor(), conversation_id)
    if conversation is None:
        abort(404, description="No such conversation (or it is assigned to someone else)")
    return conversation


@bp.get("/openapi.json")
@public
def openapi():
    return jsonify(document())


@bp.get("/me")
@requires("api.use")
def me():
    user = actor()
    return jsonify(id=user.id, email=user.email, name=user.name, role=user.role, two_factor=user.totp_enabled)


@bp.get("/conversations")
@requires("api.use")
def list_conversations():
    limit = _int_arg("limit", 50, high=conversations.MAX_PAGE)
    rows = conversations.list_conversations(db_session(), actor(), limit, _int_arg("before"))
    return jsonify(
        conversations=[conversations.conversation_data(conversation, contact) for conversation, contact in rows],
        next_before=rows[-1][0].id if len(rows) == limit else None,
    )


@bp.get("/conversations/<int:conversation_id>/messages")
@requires("api.use")
def list_messages(conversation_id: int):
    conversation = _visible_conversation(conversation_id)
    limit = _int_arg("limit", 50, high=conversations.MAX_PAGE)
    messages = conversations.list_messages(db_session(), conversation, limit, _int_arg("before"))
    reactions = conversations.reactions_for(db_session(), [message.wamid for message in messages if message.wamid])
    return jsonify(
        messages=[conversations.message_data(message, reactions.get(message.wamid)) for message in messages],
        next_before=messages[-1].id if len(messages) == limit else None,
    )


@bp.get("/templates")
@requires("api.use")
def list_templates():
    return jsonify(templates=[templates.data(row) for row in templates.list_all(db_session())])


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="Send a JSON object with Content-Type: application/json")
    return body


@bp.post("/conversations/<int:conversation_id>/messages")
@requires("api.use")
def send_message(conversation_id: int):
    """Queue a message; the worker sends it. Answers 202 with the stored message (status 'queued')."""
    conversation = _visible_conversation(conversation_id)
    body = _json_body()
    if isinstance(body.get("text"), str):
        kind, content = "text", {"body": body["text"], "preview_url": bool(body.get("preview_url"))}
    else:
        kind = body.get("type")
        content = body.get(kind) if isinstance(kind, str) else None
        if not isinstance(kind, str) or content is None:
            abort(400, description="Give 'text', or 'type' and an object of that name (see the OpenAPI document)")
        if kind == "contacts":
            content = {"contacts": content}
    reply_to = body.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, str):
        abort(400, description="'reply_to' must be a message's wamid")
    return _queued(lambda session: outbound.queue(session, conversation, kind, content, author_id=actor().id,
                                                  reply_to_wamid=reply_to))


def _queued(queue: Callable[[Session], Message]):
    """Commit a queued message and wake the worker; the rule it broke becomes a 422 in words."""
    try:
        with writing() as session:
            message = queue(session)
    except outbound.SendRefused as exc:
        return error_response(422, str(exc))
    current_app.extensions["sigdesk"].worker.wake()
    return jsonify(conversations.message_data(message)), 202


@bp.post("/conversations/<int:conversation_id>/read")
@requires("api.use")
def mark_read(conversation_id: int):
    conversation = _visible_conversation(conversation_id)
    with writing() as session:
        outbound.mark_read(session, conversation, None, False)
    receipts = settings.get(session, cipher(), "whatsapp.read_receipts")
    client = client_or_none(session, cipher()) if receipts else None
    if client is not None:
        with client:
            outbound.send_read_receipt(session, conversation, client)  # a network call: after the write
    return jsonify(id=conversation.id, unread_count=0, receipt_sent=bool(client))


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_id>/retry")
@requires("api.use")
def retry_message(conversation_id: int, message_id: int):
    conversation = _visible_conversation(conversation_id)
    session = db_session()
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id:
        abort(404, description="No such message in this conversation")
    return _queued(lambda session: outbound.retry(session, message) or message)


@bp.post("/media")
@requires("api.use")
def upload_media():
    """Check an attachment locally (real type, size) before it is uploaded to Meta; returns the media id."""
    upload = request.files.get("file")
    kind = request.form.get("type", "")
    if upload is None or kind not in LIMITS:
        abort(400, description=f"Send multipart form data with 'file' and 'type' (one of {', '.join(LIMITS)})")
    data = upload.read(LIMITS[kind] + 1)
    try:
        media_id, check = upload_checked(db_session(), cipher(), data, upload.mimetype, upload.filename, kind)
    except UploadRefused as exc:
        return error_response(exc.status, str(exc))
    return jsonify(id=media_id, mime_type=upload.mimetype, size=check.size), 201
