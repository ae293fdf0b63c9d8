"""Media: attachments served to signed-in users, and the worker that fetches what customers send."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.whatsapp_account.services import client_or_none
    from sigdesk.media.services import fetch_pending
    from sigdesk.media.views import bp

    state = app.extensions["sigdesk"]
    app.register_blueprint(bp)
    state.worker.register(
        "fetch media",
        lambda session: fetch_pending(session, lambda s: client_or_none(s, state.cipher), state.config.data_dir),
    )
