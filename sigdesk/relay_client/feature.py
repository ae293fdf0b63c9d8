"""The relay tunnel, desktop side: Settings → Inbound and the puller that fetches relayed deliveries."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.relay_client.client import Puller
    from sigdesk.relay_client.views import bp

    state = app.extensions["sigdesk"]
    app.register_blueprint(bp)
    puller = app.extensions["sigdesk.relay"] = Puller(state.database, state.cipher)
    state.worker.add_loop("relay", puller.run, puller.interrupt)
