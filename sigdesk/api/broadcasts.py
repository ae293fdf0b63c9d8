"""The broadcasts part of the REST API: create a campaign, start, pause, resume or cancel it, follow its
counts and recipients, and send a test.

The views parse, call the one command (sigdesk.broadcasts.commands) and answer with the one serializer
(BroadcastData); the commands judge every value, so the API refuses as the pages and the CLI do, naming the
field ("scheduled_at", "template.variables.body.1"). Admins and the owner only (broadcasts.manage).
"""

from __future__ import annotations

from flask import request
from pydantic import BaseModel, Field

from sigdesk.api.views import bp
from sigdesk.broadcasts import audience, commands, services
from sigdesk.broadcasts.schemas import BroadcastIn, BroadcastPath, RecipientSearch, TestSend
from sigdesk.broadcasts.services import BroadcastData, RecipientData
from sigdesk.db import utcnow
from sigdesk.openapi import operation
from sigdesk.schemas import Paging
from sigdesk.web import acting, db_session, requires, writing

PERMISSION = "broadcasts.manage"


class BroadcastPage(BaseModel):
    """Newest first."""

    items: list[BroadcastData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


class RecipientPage(BaseModel):
    """In the order the audience was frozen."""

    items: list[RecipientData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


class BroadcastSummary(BaseModel):
    """What the broadcast will do (before it starts: the audience as it is now; after: as frozen)."""

    will_send: int
    skipped_by_reason: dict[str, int] = Field(description="Recipients skipped, by the reason in words")
    duration_seconds: int = Field(description="How long sending takes at the broadcast's pace")
    limit_tier: str = Field(description="The 24-hour messaging limit (setting whatsapp.messaging_limit)")
    limit_used_share: float | None = Field(
        description="Share of the 24-hour messaging limit its new recipients use (1.0: all of it); null: unlimited"
    )


class TestSent(BaseModel):
    message_id: int
    conversation_id: int
    status: str = Field(description="queued: the worker sends it in a moment; follow it in the conversation")


def _data(broadcast_id: int) -> BroadcastData:
    return services.get(db_session(), broadcast_id)


@bp.get("/broadcasts")
@requires(PERMISSION)
@operation("listBroadcasts", (200, BroadcastPage), query=Paging, errors=(422,))
def list_broadcasts():
    """Broadcasts, newest first, each with its counts per recipient state"""
    query: Paging = request.context.query  # type: ignore[attr-defined]
    found = services.list_page(db_session(), query.cursor or None, query.limit)
    return BroadcastPage(items=found.items, next_cursor=found.next_cursor)


@bp.post("/broadcasts")
@requires(PERMISSION)
@operation("createBroadcast", (201, BroadcastData), json=BroadcastIn, errors=(404, 409, 422))
def create_broadcast():
    """Create a broadcast (a draft; POST /broadcasts/{broadcast_id}/start sends it)

    `template` names an approved template by `name` and `language`; its `variables` say what fills each
    placeholder per recipient, e.g. `{"1": "{contact.name|there}"}` (a recipient missing a value without a
    fallback is skipped with the reason). `audience` is one of `segment_id`, `contact_ids` or `import_id`.
    `rate_per_second` is at most the number's throughput; `scheduled_at` without an offset is the business's
    wall clock and may not be in the past (400 naming `scheduled_at`).
    """
    body: BroadcastIn = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        broadcast_id = commands.create(session, acting(), body).id
    return _data(broadcast_id), 201


@bp.get("/broadcasts/<broadcast_id>")
@requires(PERMISSION)
@operation("getBroadcast", (200, BroadcastData), path=BroadcastPath, errors=(404,))
def get_broadcast(broadcast_id: int):
    """A broadcast: its status and its recipients counted per state (every state named, unknown included)"""
    return _data(broadcast_id)


@bp.put("/broadcasts/<broadcast_id>")
@requires(PERMISSION)
@operation("updateBroadcast", (200, BroadcastData), path=BroadcastPath, json=BroadcastIn, errors=(404, 409, 422))
def update_broadcast(broadcast_id: int):
    """Replace a draft or scheduled broadcast's name, template, audience, pace and time (409 once started)"""
    body: BroadcastIn = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        commands.update(session, acting(), broadcast_id, body)
    return _data(broadcast_id)


@bp.delete("/broadcasts/<broadcast_id>")
@requires(PERMISSION)
@operation("deleteBroadcast", (204, None), path=BroadcastPath, errors=(404, 409))
def delete_broadcast(broadcast_id: int):
    """Delete a draft (a broadcast that was started stays for its results; cancel it instead)"""
    with writing() as session:
        commands.delete(session, acting(), broadcast_id)
    return "", 204


@bp.get("/broadcasts/<broadcast_id>/summary")
@requires(PERMISSION)
@operation("getBroadcastSummary", (200, BroadcastSummary), path=BroadcastPath, errors=(404, 422))
def broadcast_summary(broadcast_id: int):
    """Who will get it, who is skipped and why, how long it takes and the share of the messaging limit"""
    session = db_session()
    found = audience.summary(session, commands.get(session, broadcast_id), utcnow())
    return BroadcastSummary(
        will_send=found.will_send,
        skipped_by_reason=found.skipped_by_reason,
        duration_seconds=found.duration_seconds,
        limit_tier=found.limit_tier,
        limit_used_share=found.limit_used_share,
    )


def _change(broadcast_id: int, command) -> BroadcastData:
    with writing() as session:
        command(session, acting(), broadcast_id)
    return _data(broadcast_id)


@bp.post("/broadcasts/<broadcast_id>/start")
@requires(PERMISSION)
@operation("startBroadcast", (200, BroadcastData), path=BroadcastPath, errors=(404, 409, 422))
def start_broadcast(broadcast_id: int):
    """Start a draft: `scheduled` when its time is ahead, else the audience is frozen and it is `running`

    409 when it was started already (two people pressing start at once: one wins); 422 when the template is
    no longer approved or nobody in the audience may receive it.
    """
    return _change(broadcast_id, commands.start)


@bp.post("/broadcasts/<broadcast_id>/pause")
@requires(PERMISSION)
@operation("pauseBroadcast", (200, BroadcastData), path=BroadcastPath, errors=(404, 409))
def pause_broadcast(broadcast_id: int):
    """Hold a running broadcast until someone resumes it (messages already on their way finish)"""
    return _change(broadcast_id, commands.pause)


@bp.post("/broadcasts/<broadcast_id>/resume")
@requires(PERMISSION)
@operation("resumeBroadcast", (200, BroadcastData), path=BroadcastPath, errors=(404, 409, 422))
def resume_broadcast(broadcast_id: int):
    """Go on sending a paused broadcast (422 while its template is not approved)"""
    return _change(broadcast_id, commands.resume)


@bp.post("/broadcasts/<broadcast_id>/cancel")
@requires(PERMISSION)
@operation("cancelBroadcast", (200, BroadcastData), path=BroadcastPath, errors=(404, 409))
def cancel_broadcast(broadcast_id: int):
    """Stop for good: recipients not yet sent to are skipped as cancelled"""
    return _change(broadcast_id, commands.cancel)


@bp.get("/broadcasts/<broadcast_id>/recipients")
@requires(PERMISSION)
@operation("listBroadcastRecipients", (200, RecipientPage), path=BroadcastPath, query=RecipientSearch, errors=(404,))
def list_recipients(broadcast_id: int):
    """A broadcast's recipients with their state, reason and times; ?state= filters"""
    query: RecipientSearch = request.context.query  # type: ignore[attr-defined]
    found = services.recipients_page(db_session(), broadcast_id, query.state, query.cursor or None, query.limit)
    return RecipientPage(items=found.items, next_cursor=found.next_cursor)


@bp.post("/broadcasts/<broadcast_id>/test")
@requires(PERMISSION)
@operation("sendBroadcastTest", (202, TestSent), path=BroadcastPath, json=TestSend, errors=(404, 409, 422))
def send_test(broadcast_id: int):
    """Send the broadcast's template once to `phone`, filled as for `contact_id` (default: that number's contact)

    It goes through the inbox's send path, so it shows in that number's conversation; it is not paced and
    does not count in the broadcast. 400 naming `contact_id` when that contact lacks a value the variables need.
    """
    body: TestSend = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        message = commands.test_send(session, acting(), broadcast_id, body.phone, body.contact_id)
        sent = TestSent(message_id=message.id, conversation_id=message.conversation_id, status=message.status or "")
    return sent, 202
