"""Retention: the daily purge, and the outbox's read events."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.retention.services import run_daily

    state = app.extensions["sigdesk"]
    state.worker.register("retention", lambda session: run_daily(session, state.cipher, state.config.data_dir))
