"""Sending: the worker that sends queued messages, crash recovery, and read receipts."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from sigdesk.whatsapp_account.services import client_or_none
    from sigdesk.outbound.services import ReadReceipts, recover_interrupted, send_due

    state = app.extensions["sigdesk"]

    def client_for(session):
        return client_or_none(session, state.cipher)

    state.worker.on_start("recover interrupted sends", recover_interrupted)
    state.worker.register("send messages", lambda session: send_due(session, client_for))
    state.dispatcher.wake_for({"message.queued", "message.retried"}, "send messages")
    state.outbox.register("read receipts", ReadReceipts(state.cipher, client_for), ReadReceipts.EVENTS)
