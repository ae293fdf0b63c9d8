"""Marketing consent: the API routes and the outbox consumer that reads STOP and START keywords."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.consent.keywords import ConsentKeywords
    from sigdesk.consent.views import bp

    app.register_blueprint(bp)
    state = app.extensions["sigdesk"]
    state.outbox.register("consent keywords", ConsentKeywords(state.cipher), ConsentKeywords.EVENTS)
