"""The lead score as a feature: its settings page, its API operations, the outbox consumer that keeps
every contact's score, and the worker task that ends "wrote within N days" when the days have passed."""

from __future__ import annotations

from flask import Flask

from sigdesk.navigation import Entry, register_setting


def init_app(app: Flask) -> None:
    from sigdesk.custom_fields.services import register_field_users
    from sigdesk.lead_score.api import bp as api
    from sigdesk.lead_score.scoring import Decay, LeadScoreConsumer
    from sigdesk.lead_score.services import rules_using_field
    from sigdesk.lead_score.views import bp as pages, lead_reasons

    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.add_template_filter(lead_reasons, "lead_reasons")
    register_setting(Entry("lead_score", "Lead score", "lead_score.rules", "leadscore.manage", 70, "Workspace"))
    register_field_users(rules_using_field)
    state = app.extensions["sigdesk"]
    consumer = LeadScoreConsumer()
    state.outbox.register("lead score", consumer, consumer.events)
    state.worker.register("lead score decay", Decay())
