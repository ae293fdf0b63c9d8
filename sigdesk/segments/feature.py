"""Segments as a feature: saved contact filters in the API (the Contacts page uses the same services)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.segments.api import bp as api

    app.register_blueprint(api)
