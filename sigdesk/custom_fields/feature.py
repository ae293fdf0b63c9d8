"""Custom contact fields as a feature: the admins' Settings page and the API's operations."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.custom_fields.api import bp as api
    from sigdesk.custom_fields.views import bp as pages

    app.register_blueprint(pages)
    app.register_blueprint(api)
