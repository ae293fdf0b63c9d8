"""The REST API under /api/v1 and its OpenAPI document."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.api import broadcasts  # noqa: F401  (its routes join the blueprint)
    from sigdesk.api import contacts  # noqa: F401  (its routes join the blueprint)
    from sigdesk.api import reorders  # noqa: F401  (its routes join the blueprint)
    from sigdesk.api import sales  # noqa: F401  (its routes join the blueprint)
    from sigdesk.api.views import bp

    app.register_blueprint(bp)
