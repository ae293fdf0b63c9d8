"""Analytics as a feature: the dashboard's pages, the outbox consumer that keeps the rollups, and the worker's
start-up task that builds them from history the first time."""

from __future__ import annotations

from flask import Flask

from sigdesk.navigation import Entry, register_section

# Where plug-ins add dashboard panels (sigdesk.analytics.services.register_panel); re-exported for them.
from sigdesk.analytics.services import Chart, Scope, register_panel  # noqa: F401


def init_app(app: Flask) -> None:
    from sigdesk.analytics.rollups import Rollups, build_once
    from sigdesk.analytics.views import bp

    app.register_blueprint(bp)
    register_section(
        Entry("analytics", "Analytics", "analytics.index", "analytics.view", order=60, matches=("analytics.",))
    )
    state = app.extensions["sigdesk"]
    consumer = Rollups()
    state.outbox.register("analytics", consumer, consumer.events)
    state.worker.on_start("analytics rebuild", build_once)
