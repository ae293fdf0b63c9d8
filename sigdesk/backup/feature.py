"""Backups: the page, and the loop that runs scheduled backups."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.backup.schedule import BackupLoop
    from sigdesk.backup.views import bp

    state = app.extensions["sigdesk"]
    app.register_blueprint(bp)
    state.worker.add_loop("backups", BackupLoop(state.database, state.config, state.cipher).run)
