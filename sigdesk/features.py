"""The features SigDesk is made of, in the order they are wired: the one list create_app and the CLI read.

Each entry is a module with `init_app(app)` that registers what the feature brings: blueprints, worker
tasks and loops, outbox consumers, event subscribers. Settings specs and permissions stay declared in
one place each (sigdesk.settings.specs, sigdesk.roles), so one module decides what a role may do.
Command-line groups are named in COMMANDS and imported only when run, so `sigdesk relay serve` on a
relay server loads none of the CRM. Adding a feature is adding its package with a feature.py and a line
here (and one in COMMANDS for its commands).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the relay's server reads COMMANDS and must not load Flask
    import click
    from flask import Flask

FEATURES = (
    "sigdesk.health",
    "sigdesk.auth.feature",
    "sigdesk.account.feature",
    "sigdesk.admin.feature",
    "sigdesk.general.feature",
    "sigdesk.api.feature",
    "sigdesk.home",
    "sigdesk.inbox.feature",
    "sigdesk.conversations.feature",
    "sigdesk.contacts.feature",
    "sigdesk.lifecycle.feature",
    # Before the lead score: it plugs the "has ordered" rule in, with the order events that rescore it.
    "sigdesk.sales.feature",
    "sigdesk.lead_score.feature",
    "sigdesk.merge.feature",
    "sigdesk.segments.feature",
    "sigdesk.custom_fields.feature",
    "sigdesk.consent.feature",
    "sigdesk.outbound.feature",
    "sigdesk.live.feature",
    "sigdesk.search.feature",
    "sigdesk.onboarding.feature",
    "sigdesk.inbound.feature",
    "sigdesk.whatsapp_account.feature",
    "sigdesk.media.feature",
    "sigdesk.message_templates.feature",
    "sigdesk.deliveries.feature",
    "sigdesk.relay_client.feature",
    "sigdesk.backup.feature",
    "sigdesk.exports.feature",
    "sigdesk.imports.feature",
    "sigdesk.crm.feature",
    "sigdesk.sales.catalog_feature",
    "sigdesk.retention.feature",
    "sigdesk.predictions.feature",
    "sigdesk.analytics.feature",
    "sigdesk.broadcasts.feature",
)


def init_features(app: Flask) -> None:
    for name in FEATURES:
        import_module(name).init_app(app)


COMMANDS = {
    "user": "sigdesk.auth.cli:user",
    "token": "sigdesk.auth.cli:token",
    "settings": "sigdesk.settings.cli:settings",
    "backup": "sigdesk.backup.cli:backup",
    "export": "sigdesk.exports.cli:export",
    "contacts": "sigdesk.imports.cli:contacts",
    "orders": "sigdesk.imports.cli:orders",
    "relay": "sigdesk.relay_client.cli:relay",
    "predictions": "sigdesk.predictions.cli:predictions",
    "analytics": "sigdesk.analytics.cli:analytics",
    "products": "sigdesk.imports.cli:products",
    "broadcasts": "sigdesk.broadcasts.cli:broadcasts",
    "templates": "sigdesk.message_templates.cli:templates",
}


def feature_command(name: str) -> "click.Command":
    module, _, attribute = COMMANDS[name].partition(":")
    return getattr(import_module(module), attribute)
