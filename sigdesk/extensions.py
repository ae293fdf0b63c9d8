"""Flask extensions created once and bound to each app in create_app."""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", headers_enabled=True)


def login_rate_limit() -> str:
    return current_app.config["SIGDESK_LOGIN_RATE_LIMIT"]


def init_limiter(app: Flask) -> None:
    """Only decorated views have limits, and the decorator checks them itself; the extension's
    app-wide before_request check would find nothing on every other request, at a cost
    comparable to a whole bare Flask request."""
    limiter.init_app(app)
    app.before_request_funcs[None].remove(limiter._check_request_limit)
