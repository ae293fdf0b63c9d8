"""REST API under /api/v1, authenticated by personal API tokens (or the browser session)."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import select

from sigdesk.api.openapi import document
from sigdesk.conversations import services as conversations
from sigdesk.models import Template
from sigdesk.web import actor, db_session, public, requires

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
    rows = db_session().scalars(select(Template).order_by(Template.name, Template.language))
    return jsonify(templates=[
        {"id": row.id, "name": row.name, "language": row.language, "category": row.category, "status": row.status,
         "quality": row.quality, "rejected_reason": row.rejected_reason}
        for row in rows
    ])
