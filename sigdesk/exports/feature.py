"""Exports and the per-contact download."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.exports.views import bp

    app.register_blueprint(bp)
