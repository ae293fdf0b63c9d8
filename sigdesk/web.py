"""Helpers every view uses: the request's database session, access declarations, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import current_app, g, jsonify, render_template, request
from flask_login import current_user
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.config import Config
from sigdesk.crypto import Cipher
from sigdesk.db import WRITER_OPTION, write_lock
from sigdesk.models import User

View = TypeVar("View", bound=Callable[..., Any])
M = TypeVar("M")
PUBLIC = "public"


def db_session() -> Session:
    """The request's one session; views commit, teardown closes it."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["sigdesk"].database.sessionmaker()
    return g.db_session


@contextmanager
def writing() -> Iterator[Session]:
    """A view's write, in a fresh transaction that takes SQLite's write lock up front.

    The request's session reads without locking; a transaction that read and then writes fails at
    once on SQLite when a background writer (webhook ingest, the worker) committed in between.
    Here the process's write mutex is held and the transaction begins IMMEDIATE, so it waits its
    turn instead. Rows read before the block are read again on first use inside it, so what the
    block decides rests on what it writes over. Commits at the end; keep bcrypt, network calls and
    file streaming out of the block (the mutex holds up every other writer meanwhile).
    """
    session = db_session()
    if session.in_transaction():
        session.commit()
    with write_lock(session):
        session.connection(execution_options={WRITER_OPTION: True})
        try:
            session.flush()
            session.expire_all()
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class Rejected(Exception):
    """Raise inside writing() to undo what the block wrote when the input turns out wrong; `detail`
    (form errors, a message) is for the page the view answers with instead."""

    def __init__(self, detail: Any = None) -> None:
        super().__init__()
        self.detail = detail


def close_db_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def app_config() -> Config:
    return current_app.extensions["sigdesk"].config


def cipher() -> Cipher:
    return current_app.extensions["sigdesk"].cipher


def requires(permission: str) -> Callable[[View], View]:
    """Declare what a view needs; the app's access hook enforces it (see roles.py)."""

    def mark(view: View) -> View:
        view.permission = permission  # type: ignore[attr-defined]
        return view

    return mark


public = requires(PUBLIC)


def shows_secret(view: View) -> View:
    """The page shows a secret once (a new API token, recovery codes, a TOTP key, a verify token):
    it is answered with Cache-Control: no-store, so no cache or back button shows it again."""
    view.shows_secret = True  # type: ignore[attr-defined]
    return view


def internet_facing(view: View) -> View:
    """Reachable from outside the office allow-list: only for endpoints that authenticate every
    request themselves (Meta's webhook is checked by its signature)."""
    view.internet_facing = True  # type: ignore[attr-defined]
    return view


def client_ip() -> str | None:
    """The client's address; behind a trusted proxy, the one it forwarded (see security.apply_trusted_proxy)."""
    return request.remote_addr


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, message: str, **extra: Any):
    if wants_json():
        return jsonify(error=message, status=status, **extra), status
    return render_template("error.html", status=status, message=message), status


def actor() -> User | None:
    """The signed-in user's row, for services and the audit log."""
    return current_user.user if current_user.is_authenticated else None


def acting(channel: str | None = None) -> Actor:
    """Who acts in this request, for commands: the user, the API token they used, their address, the way in."""
    user = actor()
    token_id = g.get("token_id")
    return Actor(user, channel or ("api" if token_id is not None else "web"), client_ip(), token_id)


class LoginUser:
    """What Flask-Login holds for a request. The cookie names the user, their session version (a
    change of password or role ends every session) and the nonce of a server-side session row
    (sigdesk.auth.sessions: signing out ends it). API-token users have no session."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user: User, nonce: str | None = None, session_id: int | None = None) -> None:
        self.user = user
        self.nonce = nonce
        self.session_id = session_id

    def __getattr__(self, name: str):
        return getattr(self.user, name)

    @property
    def is_active(self) -> bool:
        return self.user.is_active

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_version}:{self.nonce or ''}"


def publish_event(kind: str, conversation_id: int | None, assignee_id: int | None = None, **data: Any):
    """Tell every open window about a change; call it after the commit, so readers find what it names."""
    return current_app.extensions["sigdesk"].events.publish(kind, conversation_id, assignee_id, **data)


def given(model: type[M]) -> M:
    """The query string or body that ui_call() checked against `model`."""
    context = request.context  # type: ignore[attr-defined]
    for part in (context.query, context.json, context.form):
        if isinstance(part, model):
            return part
    raise LookupError(f"{model.__name__} was not declared on {request.endpoint}")
