"""Each person's own account page: password, two-factor, API tokens."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.account.views import bp

    app.register_blueprint(bp)
