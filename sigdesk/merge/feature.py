"""Duplicates and merges as a feature: the admins' Duplicates page (Settings → Duplicates) and the API."""

from __future__ import annotations

from flask import Flask

from sigdesk.navigation import Entry, register_setting


def init_app(app: Flask) -> None:
    from sigdesk.contacts.commands import register_eraser
    from sigdesk.merge.api import bp as api
    from sigdesk.merge.commands import erase_snapshots
    from sigdesk.merge.views import bp as pages

    register_eraser("merge snapshots", erase_snapshots)

    app.register_blueprint(pages)
    app.register_blueprint(api)
    register_setting(
        Entry("duplicates", "Duplicates", "merge.duplicates", "contacts.merge", 70, "Workspace", ("merge.",))
    )
