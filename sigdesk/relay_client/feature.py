"""The relay tunnel, desktop side: Settings → Inbound and the puller that fetches relayed deliveries."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.relay_client.client import Puller
    from sigdesk.relay_client.receive import RejectedPurge
    from sigdesk.relay_client.views import bp

    state = app.extensions["sigdesk"]
    app.register_blueprint(bp)
    puller = app.extensions["sigdesk.relay"] = Puller(state.database, state.cipher)
    state.worker.add_loop("relay", puller.run, puller.interrupt)
    state.worker.register("relay rejected digests", RejectedPurge())
    state.dispatcher.subscribe("relay.paired", lambda _event: puller.wake())
    state.dispatcher.subscribe("relay.replayed", lambda _event: puller.wake())
    state.dispatcher.subscribe("settings.changed", lambda event: _wake_for(puller, event.keys))


def _wake_for(puller, keys) -> None:
    """A new mode, relay or app secret counts now, not after the puller's current long-poll."""
    if any(key.startswith("relay.") or key in ("inbound.mode", "whatsapp.app_secret") for key in keys):
        puller.wake()
