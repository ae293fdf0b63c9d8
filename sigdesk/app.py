"""create_app: the one place where the database, extensions, hooks and blueprints are wired."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, g, make_response, request
from flask_login import AnonymousUserMixin
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from sigdesk import __version__
from sigdesk.auth.sessions import REMEMBER_ABSOLUTE
from sigdesk.config import Config
from sigdesk.crypto import Cipher
from sigdesk.db import Database, upgrade_to_head, write_lock
from sigdesk.errors import UserError
from sigdesk.events.bus import EventBus
from sigdesk.events.catalogue import CATALOGUE
from sigdesk.events.outbox import WORKER_TASK as OUTBOX_TASK, Dispatcher, Outbox, attach
from sigdesk.extensions import csrf, init_limiter, login_manager
from sigdesk.features import init_features
from sigdesk.jobs import Worker
from sigdesk.security import CachedPolicy, install as install_security
from sigdesk.settings.services import open_cipher
from sigdesk.web import LoginUser, close_db_session, db_session, error_response, public

log = logging.getLogger(__name__)


@dataclass
class AppState:
    config: Config
    database: Database
    cipher: Cipher
    worker: Worker
    policy: CachedPolicy = field(default_factory=CachedPolicy)
    events: EventBus = field(default_factory=EventBus)
    dispatcher: Dispatcher = field(default_factory=Dispatcher)
    outbox: Outbox = field(default_factory=Outbox)


def _session_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    config.ensure_data_dir()
    database = Database(config.database_url)
    upgrade_to_head(database, config.migrations_dir)
    with database.session() as session:
        cipher = open_cipher(session, config.data_key_file)

    app = Flask(
        "sigdesk",
        template_folder=str(config.templates_dir),
        static_folder=str(config.static_dir),
    )
    app.config.update(
        SECRET_KEY=_session_key(config.secret_key_file),
        SESSION_COOKIE_NAME="sigdesk_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=config.https,
        PERMANENT_SESSION_LIFETIME=REMEMBER_ABSOLUTE,  # the longest a session lives (sigdesk.auth.sessions)
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        SIGDESK_LOGIN_RATE_LIMIT=config.login_rate_limit,
        TESTING=config.testing,
    )
    state = app.extensions["sigdesk"] = AppState(
        config=config, database=database, cipher=cipher, worker=Worker(database)
    )
    state.dispatcher.bus, state.dispatcher.wake = state.events, state.worker.wake
    attach(database.engine, state.dispatcher)
    state.dispatcher.subscribe("settings.changed", lambda _event: state.policy.invalidate())
    app.teardown_appcontext(close_db_session)

    _init_login(app)
    csrf.init_app(app)
    init_limiter(app)
    install_security(app)
    _mark_static_public(app)
    _register_errors(app)
    init_features(app)
    state.worker.register(OUTBOX_TASK, state.outbox, gather=0.25)
    wanted = state.outbox.names
    state.dispatcher.wake_for(set(CATALOGUE) if wanted is None else wanted, OUTBOX_TASK)
    with database.session() as session:
        state.outbox.open(session)

    @app.context_processor
    def globals_for_templates():
        return {"sigdesk_version": __version__}

    return app


def _init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.anonymous_user = AnonymousUserMixin

    @login_manager.user_loader
    def load_user(identity: str):
        """The cookie's session must still be open on the server (signing out closes it)."""
        from sigdesk.auth import sessions

        user_id, version, nonce = (identity.split(":", 2) + ["", ""])[:3]
        if not user_id.isdigit() or not version.isdigit():
            return None
        current = sessions.find(db_session(), int(user_id), nonce)
        if current is None or current.user.session_version != int(version):
            return None
        if current.needs_touch:
            database = app.extensions["sigdesk"].database
            with write_lock(database.engine), database.session() as writer:
                sessions.touch(writer, current.id)
        g.session_id = current.id
        return LoginUser(current.user, nonce, current.id)

    @login_manager.request_loader
    def load_from_token(req):
        from sigdesk.auth.services import token_for, touch_token

        auth = req.authorization
        if not req.path.startswith("/api/") or auth is None or auth.type != "bearer" or not auth.token:
            return None
        row = token_for(db_session(), auth.token)
        if row is None:
            return None
        database = app.extensions["sigdesk"].database
        with write_lock(database.engine), database.session() as writer:  # the lock outlives the commit
            touch_token(writer, row.id)
        g.token_user_id, g.token_id = row.user.id, row.id
        return LoginUser(row.user)


def _mark_static_public(app: Flask) -> None:
    """CSS, JS and icons are needed on the login page, before anyone signs in."""
    send = app.view_functions["static"]

    def static(filename: str):
        return send(filename=filename)

    app.view_functions["static"] = public(static)


def _register_errors(app: Flask) -> None:
    messages = {
        400: "The request was not understood.",
        404: "There is nothing at this address.",
        405: "This address does not accept that method.",
        413: "The upload is too large.",
        429: "Too many attempts. Wait a minute and try again.",
    }

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        explicit = error.description and error.description != type(error).description
        message = error.description if explicit else messages.get(status) or error.description or "Request failed"
        if status == 413:
            limit_mb = app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
            message = f"The request body is larger than the {limit_mb:.0f} MB limit."
        if status == 429:
            message = messages[429]
            log.warning("rate limit hit on %s", request.endpoint)
        allowed = getattr(error, "valid_methods", None)  # a 405 names what the address does accept (RFC 9110)
        return *error_response(status, message), ({"Allow": ", ".join(allowed)} if allowed else {})

    @app.errorhandler(UserError)
    def user_error(error: UserError):
        """Every refusal a service raises, answered the same way whichever page or call led to it."""
        session = g.get("db_session")
        if session is not None:
            session.rollback()
        extra = {"field": error.field} if error.field else {}
        return error_response(error.status, str(error), **extra)

    @app.errorhandler(OperationalError)
    def database_busy(error: OperationalError):
        if "database is locked" not in str(error.orig):
            return unexpected(error)
        log.warning("database busy on %s", request.endpoint)
        response = make_response(
            *error_response(503, "SigDesk is busy saving other changes. Please try again in a moment.")
        )
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unexpected error on %s", request.endpoint)
        return error_response(500, "Something went wrong on the server. The details are in the log.")
