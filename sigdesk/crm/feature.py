"""The Contacts section as a feature: the Contacts page and the contact page (sigdesk.crm.views) and their
entry in the top bar. Wired after contacts, segments, custom fields, lead score, merge and imports, whose
services and commands the pages call."""

from __future__ import annotations

from flask import Flask

from sigdesk.navigation import Entry, register_section


def init_app(app: Flask) -> None:
    from sigdesk.crm.views import bp

    app.register_blueprint(bp)
    register_section(Entry("contacts", "Contacts", "contacts.index", "contacts.view", order=20, matches=("contacts.",)))
