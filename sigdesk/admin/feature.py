"""Team, audit log and sign-in history."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.admin.views import bp

    app.register_blueprint(bp)
