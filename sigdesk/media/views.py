"""Stored media, served only to signed-in users who may see the conversation.

Only media whose bytes matched the webhook's sha256 and whose real type (magic bytes) matched
the declared one is served; anything else stays quarantined and is never sent as the declared type.
"""

from __future__ import annotations

from flask import Blueprint, abort, send_file

from sigdesk.conversations.services import get_visible
from sigdesk.models import MediaState, Message
from sigdesk.web import actor, app_config, db_session, error_response, requires

bp = Blueprint("media", __name__, url_prefix="/media")

INLINE_TYPES = ("image/", "audio/", "video/")


@bp.get("/<int:message_id>")
@requires("app.use")
def download(message_id: int):
    session = db_session()
    message = session.get(Message, message_id)
    if message is None or get_visible(session, actor(), message.conversation_id) is None:
        abort(404)
    if message.revoked_at is not None:
        return error_response(410, "The customer deleted this message.")
    if message.media_state == MediaState.QUARANTINED.value:
        return error_response(
            409,
            "This file did not match what WhatsApp said it was, so SigDesk keeps it quarantined and will not open it.",
        )
    if message.media_state != MediaState.READY.value or not message.storage_key:
        return error_response(404, "This file has not been downloaded yet.")
    path = (app_config().data_dir / message.storage_key).resolve()
    if app_config().data_dir.resolve() not in path.parents or not path.is_file():
        abort(404)
    mime = message.mime_type or "application/octet-stream"
    inline = mime.startswith(INLINE_TYPES) and message.type != "document"
    response = send_file(
        path,
        mimetype=mime,
        as_attachment=not inline,
        download_name=message.filename or f"{message.type}-{message.id}",
        conditional=True,
        max_age=3600,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
