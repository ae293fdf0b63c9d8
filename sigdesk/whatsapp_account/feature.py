"""Settings → Connection: the connection to Meta."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.whatsapp_account.views import bp

    app.register_blueprint(bp)
