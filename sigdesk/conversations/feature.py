"""Conversation actions: the worker reopens snoozed conversations when their time comes."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.conversations.commands import SnoozeWaker

    app.extensions["sigdesk"].worker.register("reopen snoozed conversations", SnoozeWaker())
