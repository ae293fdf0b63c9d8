"""Contacts as a feature: nothing to register (no page, worker task or consumer of its own).

Its commands are called by the Contacts section's pages (sigdesk.crm), by the pages that own other
actions (Admin → Exports anonymises) and by the webhook ingest and the sender (marketing consent).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Kept so contacts' blueprints, consumers and subscribers have one place to register when they come."""
