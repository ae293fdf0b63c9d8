"""Flask extensions created once and bound to each app in create_app."""

from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", headers_enabled=True)


def login_rate_limit() -> str:
    return current_app.config["SIGDESK_LOGIN_RATE_LIMIT"]
