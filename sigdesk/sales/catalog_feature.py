"""The Meta catalog sync as a feature: its Settings page, and the outbox consumer that runs queued syncs
in the worker."""

from __future__ import annotations

from flask import Flask

from sigdesk.navigation import Entry, register_setting


def init_app(app: Flask) -> None:
    from sigdesk.sales.catalog_jobs import CONSUMER, QUEUED, CatalogSync
    from sigdesk.sales.catalog_views import bp

    state = app.extensions["sigdesk"]
    app.register_blueprint(bp)
    state.outbox.register(CONSUMER, CatalogSync(state.cipher), {QUEUED})
    register_setting(
        Entry("catalog", "Meta catalog", "catalog_sync.index", "products.manage", 69, "Workspace", ("catalog_sync.",))
    )
