"""The team inbox page."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.inbox.views import bp

    app.register_blueprint(bp)
