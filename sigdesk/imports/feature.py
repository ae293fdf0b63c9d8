"""Contact imports as a feature: the page (for now in the Data and security group of Settings), the API's operations,
the worker's task that runs queued imports and undos a batch at a time, and the merge mover that keeps
an import's undo pointing at the contact a merge kept, and the eraser that drops what imports kept of a
contact that is anonymised."""

from __future__ import annotations

from flask import Flask

TASK = "contact imports"


def init_app(app: Flask) -> None:
    from sigdesk.contacts.commands import register_eraser
    from sigdesk.imports import commands
    from sigdesk.imports.api import bp as api
    from sigdesk.imports.services import MAX_UPLOAD, clear_stale_uploads
    from sigdesk.imports.views import allow_large_uploads, bp as pages
    from sigdesk.merge.commands import register_mover

    state = app.extensions["sigdesk"]
    data_dir = state.config.data_dir
    app.register_blueprint(pages)
    app.register_blueprint(api)
    # the server's body limit (sigdesk.server) is the larger of this and MAX_CONTENT_LENGTH
    app.config["MAX_UPLOAD_BYTES"] = max(app.config.get("MAX_UPLOAD_BYTES") or 0, MAX_UPLOAD + 1024 * 1024)
    # before CSRF's own hook reads the form, or the app-wide limit would refuse the upload first
    app.before_request_funcs.setdefault(None, []).insert(0, allow_large_uploads)
    state.worker.on_start("requeue interrupted imports", commands.requeue_interrupted)
    state.worker.on_start("clear stale import uploads", lambda session: clear_stale_uploads(session, data_dir))
    state.worker.register(TASK, lambda session: commands.work(session, data_dir))
    state.dispatcher.wake_for({"contacts.import_queued", "contacts.import_undo_queued"}, TASK)
    register_mover("contact imports", commands.move_changes)
    register_eraser("contact imports", commands.erase_contact)
