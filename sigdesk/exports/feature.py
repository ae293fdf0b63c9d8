"""Exports and the per-contact download."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.exports.services import clear_leftovers
    from sigdesk.exports.views import bp

    app.register_blueprint(bp)
    # a download a crash or a cut connection left in the private folder holds personal data: gone at start
    clear_leftovers(app.extensions["sigdesk"].config.data_dir)
