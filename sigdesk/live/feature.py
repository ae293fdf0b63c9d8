"""The live-update stream open inboxes listen to."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.live.views import bp

    app.register_blueprint(bp)
