"""Reorder predictions as a feature: the "Due to reorder" and "Accuracy" pages in the top bar, the accuracy
panel on the Analytics dashboard (shop-wide: owners and admins), the worker task
that refreshes every forecast (debounced after order events, and when the business day turns), the outbox
consumer that asks for it, and the crash recovery of a refresh a stopped process left running. The API's
operations live in sigdesk.api.reorders, wired by the API feature."""

from __future__ import annotations

from flask import Flask

from sigdesk.navigation import Entry, register_section

TASK = "reorder predictions"


def init_app(app: Flask) -> None:
    from sigdesk.analytics.feature import register_panel
    from sigdesk.predictions.services import OrdersConsumer, RefreshTask, accuracy_chart, requeue_interrupted
    from sigdesk.predictions.views import bp

    app.register_blueprint(bp)
    register_panel(
        "reorder_accuracy", "Reorder-prediction accuracy", accuracy_chart, section="sales", order=60, everyone_only=True
    )
    register_section(
        Entry("reorders", "Reorders", "predictions.due", "contacts.view", order=35, matches=("predictions.",))
    )
    state = app.extensions["sigdesk"]
    state.worker.on_start("requeue interrupted prediction refreshes", requeue_interrupted)
    state.worker.register(TASK, RefreshTask())
    consumer = OrdersConsumer()
    if consumer.events:
        state.outbox.register("reorder predictions", consumer, consumer.events)
