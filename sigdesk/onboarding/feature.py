"""The first-run wizard."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.onboarding.views import bp

    app.register_blueprint(bp)
