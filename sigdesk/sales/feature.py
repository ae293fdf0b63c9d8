"""Sales as a feature: products and orders (their REST API is part of sigdesk.api), the admins' Settings →
Products page, and the plug-ins that let lower features hear of orders without importing them: a merge moves
the merged contact's orders, the lead score's "Has ordered" rule (with the order events that rescore it, so
this feature is wired before the lead score's), the contact timeline's orders, and the eraser that clears
order notes when a contact is anonymised."""

from __future__ import annotations

from flask import Flask

from sigdesk.navigation import Entry, register_setting


def init_app(app: Flask) -> None:
    from sigdesk.contacts.commands import register_eraser
    from sigdesk.events.catalogue import (
        OrderCreated,
        OrderDeleted,
        OrderStatusChanged,
        OrdersImported,
        OrdersImportUndone,
    )
    from sigdesk.timeline import register_source
    from sigdesk.lead_score.scoring import plug
    from sigdesk.merge.commands import register_mover
    from sigdesk.sales import commands, services
    from sigdesk.sales.pages import init_app as orders_ui
    from sigdesk.sales.views import bp

    app.register_blueprint(bp)
    orders_ui(app)  # the inbox panel's and contact page's orders, and the cart -> draft order consumer
    register_mover("orders", commands.move_orders)
    register_eraser("order notes", commands.erase_order_notes)
    plug(
        "has_ordered",
        services.has_ordered,
        # whether a contact has a sold order changes with these; an import or its undoing, for anybody
        contact_events=(OrderCreated.name, OrderStatusChanged.name, OrderDeleted.name),
        everyone_events=(OrdersImported.name, OrdersImportUndone.name),
    )
    register_source(services.TIMELINE_SOURCE, services.order_timeline)
    register_setting(
        Entry("products", "Products", "products.index", "products.manage", 68, "Workspace", ("products.",))
    )
