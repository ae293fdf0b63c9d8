"""Broadcasts as a feature: the campaign pages and API, the paced sending engine on its own worker loop,
the consumers that follow each recipient's message (statuses, replies), and the plug-ins that keep
recipients right when contacts are merged or erased."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    _pages(app)
    _contacts()
    _engine(app)


def _engine(app: Flask) -> None:
    """The sending engine on its own loop (which recovers the broadcast messages a crash left claimed, from
    its release journal in the data dir, before it claims anything), the followers, and the number's shared
    throughput bucket for the inbox's sender."""
    from sigdesk.broadcasts.engine import JOURNAL_NAME, Engine
    from sigdesk.broadcasts.followers import Followers
    from sigdesk.broadcasts.limits import pace_inbox_send
    from sigdesk.outbound.services import set_pacer
    from sigdesk.whatsapp_account.services import client_or_none

    state = app.extensions["sigdesk"]
    engine = app.extensions["sigdesk.broadcasts"] = Engine(
        state.database,
        lambda session: client_or_none(session, state.cipher),
        journal=state.config.data_dir / JOURNAL_NAME,
    )
    state.worker.add_loop("broadcasts", engine.run, engine.interrupt)
    state.dispatcher.subscribe("broadcast.changed", engine.changed)
    state.dispatcher.subscribe("settings.changed", engine.settings_changed)
    state.outbox.register("broadcast followers", Followers(), Followers.EVENTS)
    set_pacer(pace_inbox_send)


def _contacts() -> None:
    """A merged contact's recipient rows follow it; an anonymised contact's frozen number is erased."""
    from sigdesk.broadcasts import commands
    from sigdesk.contacts.commands import register_eraser
    from sigdesk.merge.commands import register_mover

    register_mover("broadcast recipients", commands.move_recipients)
    register_eraser("broadcast recipients", commands.erase_recipients)


def _pages(app: Flask) -> None:
    """The Broadcasts section, Settings → Broadcasts and the dashboard's campaigns panel (Part C's pages)."""
    from sigdesk.analytics.feature import register_panel
    from sigdesk.broadcasts.panel import KEY, TITLE, broadcasts_chart
    from sigdesk.broadcasts.views import bp, settings_bp
    from sigdesk.navigation import Entry, register_section, register_setting

    app.register_blueprint(bp)
    app.register_blueprint(settings_bp)
    register_section(
        Entry("broadcasts", "Broadcasts", "broadcasts.index", "broadcasts.manage", order=55, matches=("broadcasts.",))
    )
    register_setting(Entry("broadcasts", "Broadcasts", "broadcast_settings.index", "settings.manage", 50, "WhatsApp"))
    register_panel(KEY, TITLE, broadcasts_chart, section="sales", order=70, everyone_only=True)
