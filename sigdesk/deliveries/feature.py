"""Settings → Webhooks: what Meta delivered and what was refused."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.deliveries.views import bp

    app.register_blueprint(bp)
