"""WhatsApp webhooks in: Meta's handshake page, and the intake that answers deliveries before Flask."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.inbound.views import bp, install_intake

    app.register_blueprint(bp)
    install_intake(app)
