"""Message templates synced from Meta."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.message_templates.views import bp

    app.register_blueprint(bp)
