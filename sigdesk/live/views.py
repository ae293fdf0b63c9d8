"""GET /events: live updates as server-sent events, filtered by who may see each conversation.

Each open stream holds one waitress thread; the number of streams is capped so that ordinary
requests always find a free thread (server.py gives waitress that many threads on top).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, make_response, request

from sigdesk.conversations.services import agents_see_all, may_see
from sigdesk.events.bus import MAX_STREAMS, Closed, Event, Subscription, TooManyStreams
from sigdesk.web import actor, db_session, error_response, requires

log = logging.getLogger(__name__)

bp = Blueprint("events", __name__)

HEARTBEAT_SECONDS = 15.0
MAX_AGE_SECONDS = 600.0
RETRY_MS = 2000
POLL_SECONDS = 1.0
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Viewer:
    """The user as of the stream's start: their role and the visibility setting are read once per connection."""

    id: int
    role: str
    widened: bool = False

    def receives(self, event: Event) -> bool:
        return any(may_see(self, assignee_id, self.widened) for assignee_id in event.audience)  # type: ignore[arg-type]


def frame(event_id: str | None, kind: str | None, data: dict | None) -> bytes:
    lines = []
    if event_id:
        lines.append(f"id: {event_id}")
    if kind:
        lines.append(f"event: {kind}")
    if data is not None:
        lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


@bp.get("/events")
@requires("app.use")
def stream():
    config = current_app.config
    bus = current_app.extensions["sigdesk"].events
    user = actor()
    viewer = Viewer(user.id, user.role, agents_see_all(db_session()))
    last_id = (request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "").strip()[:MAX_ID_LENGTH]
    try:
        subscription = bus.subscribe(last_id or None, limit=config.get("SIGDESK_MAX_EVENT_STREAMS", MAX_STREAMS))
    except TooManyStreams:
        log.warning("live-update stream refused: the limit of open streams is reached")
        response = make_response(
            *error_response(
                503, "Too many live-update connections are open (close some SigDesk windows or tabs); retrying shortly."
            )
        )
        response.headers["Retry-After"] = "10"
        return response
    disconnected = request.environ.get("waitress.client_disconnected") or (lambda: False)
    body = _stream(
        subscription,
        viewer,
        disconnected,
        heartbeat=config.get("SIGDESK_EVENTS_HEARTBEAT", HEARTBEAT_SECONDS),
        max_age=config.get("SIGDESK_EVENTS_MAX_AGE", MAX_AGE_SECONDS),
        resync_reason=("restart or gap" if last_id else None),
    )
    response = Response(body, mimetype="text/event-stream")
    response.call_on_close(subscription.close)
    response.headers["Cache-Control"] = "no-cache, no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _stream(
    subscription: Subscription,
    viewer: Viewer,
    disconnected: Callable[[], bool],
    heartbeat: float,
    max_age: float,
    resync_reason: str | None,
) -> Iterator[bytes]:
    started = time.monotonic()
    try:
        if subscription.missed is None:
            yield f"retry: {RETRY_MS}\n".encode() + frame(subscription.start_id, "resync", {"reason": resync_reason})
        else:
            # the id tells the browser where it is, so a reconnect catches up even if nothing arrived yet
            yield f"retry: {RETRY_MS}\n".encode() + frame(subscription.start_id, None, None)
            for event in subscription.missed:
                if viewer.receives(event):
                    yield frame(event.id, event.kind, event.payload())
        last_write = time.monotonic()
        position = None  # the newest id this viewer was not sent, moved forward with the heartbeat
        while True:
            now = time.monotonic()
            if now - started >= max_age or disconnected():
                return
            try:
                events = subscription.get(min(POLL_SECONDS, max(0.0, heartbeat - (now - last_write))))
            except Closed:
                if subscription.overflowed:
                    yield frame(None, "resync", {"reason": "too far behind"})
                return
            sent = [event for event in events if viewer.receives(event)]
            chunk = b"".join(frame(event.id, event.kind, event.payload()) for event in sent)
            if events:
                position = None if sent and sent[-1] is events[-1] else events[-1].id
            if not chunk and time.monotonic() - last_write >= heartbeat:
                chunk = (f"id: {position}\n" if position else "").encode() + b": ping\n\n"
                position = None
            if chunk:
                yield chunk
                last_write = time.monotonic()
    finally:
        subscription.close()
