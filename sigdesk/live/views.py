"""GET /events: live updates as server-sent events, filtered by who may see each conversation.

Each open stream holds one waitress thread; the number of streams is capped so that ordinary
requests always find a free thread (server.py gives waitress that many threads on top), and each user
may hold only a few of them, so one person (or a stolen cookie) cannot take every place.

A stream serves the user as they were when it opened; at every heartbeat the user is read again, and
the stream ends when they were deactivated, their role changed, the session was signed out, or the
"agents see every conversation" setting changed, so the browser reconnects as whoever the user is now
(or not at all).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, g, make_response, request
from sqlalchemy.exc import SQLAlchemyError

from sigdesk.auth import sessions
from sigdesk.conversations.services import agents_see_all, may_see
from sigdesk.events.bus import MAX_STREAMS, Closed, Event, Subscription, TooManyStreams
from sigdesk.models import User
from sigdesk.web import actor, db_session, error_response, requires

log = logging.getLogger(__name__)

bp = Blueprint("events", __name__)

HEARTBEAT_SECONDS = 15.0
MAX_AGE_SECONDS = 600.0
RETRY_MS = 2000
POLL_SECONDS = 1.0
MAX_ID_LENGTH = 64
MAX_STREAMS_PER_USER = 4


class UserStreams:
    """How many streams each user holds, so that one user cannot take every place."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[int] = Counter()

    def take(self, user_id: int, limit: int) -> Callable[[], None] | None:
        """A place for one more stream, or None at the limit; call what it returns (any number of times) to free it."""
        with self._lock:
            if self._open[user_id] >= limit:
                return None
            self._open[user_id] += 1
        freed = threading.Event()

        def free() -> None:
            with self._lock:
                if freed.is_set():
                    return
                freed.set()
                self._open[user_id] -= 1
                if self._open[user_id] <= 0:
                    del self._open[user_id]

        return free

    def count(self, user_id: int) -> int:
        with self._lock:
            return self._open[user_id]


def user_streams(app: Flask) -> UserStreams:
    return app.extensions.setdefault("sigdesk.live.user_streams", UserStreams())


@dataclass(frozen=True)
class Viewer:
    """The user as of the stream's start: their role and the visibility setting are read once per connection."""

    id: int
    role: str
    widened: bool = False
    session_version: int = 0
    session_id: int | None = None

    def receives(self, event: Event) -> bool:
        return any(may_see(self, assignee_id, self.widened) for assignee_id in event.audience)  # type: ignore[arg-type]


def still_allowed(app: Flask, viewer: Viewer) -> bool:
    """Whether the stream may go on: the user is active, in the same role, still signed in, and what
    they may see has not changed (the "agents see every conversation" setting, which decides it for
    agents, is read again too: turned off, an agent must stop receiving others' conversations)."""
    session = app.extensions["sigdesk"].database.sessionmaker()
    try:
        user = session.get(User, viewer.id)
        return (
            user is not None
            and user.is_active
            and user.role == viewer.role
            and user.session_version == viewer.session_version
            and (viewer.session_id is None or sessions.is_live(session, viewer.session_id))
            and agents_see_all(session) == viewer.widened
        )
    except SQLAlchemyError:
        log.warning("could not re-check a live-update stream's user; ending the stream", exc_info=True)
        return False
    finally:
        session.close()


def _too_many(message: str):
    response = make_response(*error_response(503, message))
    response.headers["Retry-After"] = "10"
    return response


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
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    bus = app.extensions["sigdesk"].events
    user = actor()
    viewer = Viewer(user.id, user.role, agents_see_all(db_session()), user.session_version, g.get("session_id"))
    last_id = (request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "").strip()[:MAX_ID_LENGTH]
    free = user_streams(app).take(user.id, config.get("SIGDESK_MAX_EVENT_STREAMS_PER_USER", MAX_STREAMS_PER_USER))
    if free is None:
        log.warning("live-update stream refused: one user holds the most streams allowed per user")
        return _too_many("You have too many SigDesk windows or tabs open with live updates; close some of them.")
    try:
        subscription = bus.subscribe(last_id or None, limit=config.get("SIGDESK_MAX_EVENT_STREAMS", MAX_STREAMS))
    except TooManyStreams:
        free()
        log.warning("live-update stream refused: the limit of open streams is reached")
        return _too_many(
            "Too many live-update connections are open (close some SigDesk windows or tabs); retrying shortly."
        )
    disconnected = request.environ.get("waitress.client_disconnected") or (lambda: False)
    body = _stream(
        subscription,
        viewer,
        disconnected,
        heartbeat=config.get("SIGDESK_EVENTS_HEARTBEAT", HEARTBEAT_SECONDS),
        max_age=config.get("SIGDESK_EVENTS_MAX_AGE", MAX_AGE_SECONDS),
        resync_reason=("restart or gap" if last_id else None),
        allowed=lambda: still_allowed(app, viewer),
        free=free,
    )
    response = Response(body, mimetype="text/event-stream")
    response.call_on_close(subscription.close)
    response.call_on_close(free)
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
    allowed: Callable[[], bool] = lambda: True,
    free: Callable[[], None] = lambda: None,
) -> Iterator[bytes]:
    started = time.monotonic()
    checked = started
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
            if now - checked >= heartbeat:
                if not allowed():
                    yield frame(None, "resync", {"reason": "access changed"})
                    return
                checked = now
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
        free()
