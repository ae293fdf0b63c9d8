"""Full-text search of messages and contacts."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.search.views import bp

    app.register_blueprint(bp)
