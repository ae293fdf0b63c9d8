"""Settings → WhatsApp: the connection to Meta."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.connect.views import bp

    app.register_blueprint(bp)
