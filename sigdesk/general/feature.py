"""Settings → General: the business's time zone and other house rules."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.general.views import bp

    app.register_blueprint(bp)
