"""Tags and lifecycle stages as a feature: the admins' pages and the API's operations."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.lifecycle.api import bp as api
    from sigdesk.lifecycle.views import bp as pages

    app.register_blueprint(pages)
    app.register_blueprint(api)
