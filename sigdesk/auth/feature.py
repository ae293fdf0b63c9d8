"""Sign-in, first-run setup and two-factor: its pages."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.auth.views import bp

    app.register_blueprint(bp)
