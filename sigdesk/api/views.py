"""REST API under /api/v1, authenticated by personal API tokens (or the browser session).

Every operation is declared with `operation()` (sigdesk/openapi.py): inputs are validated
before the view runs and the answer is checked against its model, so the OpenAPI document is
what the code does. Lists answer {"items", "next_cursor"} and take ?cursor=&limit= (sigdesk/paging.py).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, jsonify, request
from sqlalchemy.orm import Session

from sigdesk.openapi import document, operation
from sigdesk.api.schemas import (
    ConversationPage,
    ConversationPath,
    MarkedRead,
    MediaUpload,
    MediaUploaded,
    MeData,
    MessagePage,
    MessagePath,
    SendMessage,
    TemplatePage,
)
from sigdesk.conversations import commands
from sigdesk.conversations import services as conversations
from sigdesk.conversations.schemas import ConversationData, MessageData
from sigdesk.media.services import upload_checked
from sigdesk.message_templates import services as templates
from sigdesk.message_templates.schemas import TemplateData
from sigdesk.models import Message
from sigdesk.paging import Cursor
from sigdesk.schemas import Paging
from sigdesk.settings import services as settings
from sigdesk.web import acting, actor, app_config, cipher, db_session, public, requires, writing
from sigdesk.whatsapp.media import LIMITS

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _paging() -> tuple[int, Cursor | None]:
    query: Paging = request.context.query  # type: ignore[attr-defined]
    return query.limit, Cursor.decode(query.cursor) if query.cursor else None


@bp.get("/openapi.json")
@public
def openapi():
    return jsonify(document())


@bp.get("/me")
@requires("api.use")
@operation("getMe", (200, MeData))
def me():
    """The user the token belongs to"""
    return MeData.of(actor())


@bp.get("/conversations")
@requires("api.use")
@operation("listConversations", (200, ConversationPage), query=Paging)
def list_conversations():
    """Conversations you may see, latest activity first"""
    found = conversations.list_conversations(db_session(), actor(), *_paging())
    return ConversationPage(items=[ConversationData.of(*row) for row in found.items], next_cursor=found.next_cursor)


@bp.get("/conversations/<conversation_id>/messages")
@requires("api.use")
@operation("listMessages", (200, MessagePage), path=ConversationPath, query=Paging, errors=(404,))
def list_messages(conversation_id: int):
    """Messages of a conversation, newest first"""
    session = db_session()
    found = conversations.list_messages(session, commands.find(session, acting(), conversation_id), *_paging())
    reactions = conversations.reactions_for(session, [message.wamid for message in found.items if message.wamid])
    items = [MessageData.of(message, reactions.get(message.wamid)) for message in found.items]
    return MessagePage(items=items, next_cursor=found.next_cursor)


@bp.get("/templates")
@requires("api.use")
@operation("listTemplates", (200, TemplatePage), query=Paging)
def list_templates():
    """Message templates synced from Meta"""
    found = templates.list_page(db_session(), *_paging())
    return TemplatePage(items=[TemplateData.of(row) for row in found.items], next_cursor=found.next_cursor)


@bp.post("/conversations/<conversation_id>/messages")
@requires("api.use")
@operation("sendMessage", (202, MessageData), path=ConversationPath, json=SendMessage, errors=(404, 422))
def send_message(conversation_id: int):
    """Queue a WhatsApp message (sent in the background)

    Answers 202 with the stored message (status 'queued'); the worker sends it.
    """
    kind, content, reply_to = request.context.json.content()  # type: ignore[attr-defined]
    return _queued(lambda session: commands.send(session, acting(), conversation_id, kind, content, reply_to))


def _queued(command: Callable[[Session], Message]):
    """Commit a queued message; the worker, woken by the event, sends it."""
    with writing() as session:
        message = command(session)
    return MessageData.of(message), 202


@bp.post("/conversations/<conversation_id>/read")
@requires("api.use")
@operation("markRead", (200, MarkedRead), path=ConversationPath, errors=(404,))
def mark_read(conversation_id: int):
    """Mark the conversation read

    The read receipt, when the business sends them, goes out from the background worker.
    """
    with writing() as session:
        conversation = commands.mark_read(session, acting(), conversation_id)
    receipts = bool(settings.get(db_session(), cipher(), "whatsapp.read_receipts"))
    return MarkedRead(id=conversation.id, unread_count=0, receipt_queued=receipts)


@bp.post("/conversations/<conversation_id>/messages/<message_id>/retry")
@requires("api.use")
@operation("retryMessage", (202, MessageData), path=MessagePath, errors=(404, 422))
def retry_message(conversation_id: int, message_id: int):
    """Send a failed message again"""
    return _queued(lambda session: commands.retry(session, acting(), conversation_id, message_id))


@bp.post("/media")
@requires("api.use")
@operation("uploadMedia", (201, MediaUploaded), form=MediaUpload, errors=(409, 422, 502))
def upload_media():
    """Upload an attachment after checking its real type and size

    Use the answer's id in a media message.
    """
    form: MediaUpload = request.context.form  # type: ignore[attr-defined]
    upload, kind = form.file, form.type
    data = upload.read(LIMITS[kind] + 1)
    media_id, check = upload_checked(
        db_session(), cipher(), data, upload.mimetype, upload.filename, kind, app_config().data_dir
    )
    return MediaUploaded(id=media_id, mime_type=upload.mimetype, size=check.size), 201
