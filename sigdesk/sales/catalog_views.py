"""Settings → Meta catalog: which catalog to read, "Sync now", and how the last sync went.

The sync itself runs in the worker (sigdesk.sales.catalog_jobs); this page only queues it and shows the
outcome the worker wrote to the audit log. The Products page may include the same button
(templates sales/_catalog_sync.html).
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from sigdesk.sales.catalog import SETTING
from sigdesk.sales.catalog_jobs import last_sync, request_sync
from sigdesk.settings import commands as settings_commands, services as settings
from sigdesk.settings.specs import SPECS
from sigdesk.web import Rejected, acting, cipher, db_session, requires, writing

bp = Blueprint("catalog_sync", __name__, url_prefix="/settings/products/catalog")

PERMISSION = "products.manage"


def _page(value: str, errors: dict[str, str], status: int = 200):
    return render_template(
        "sales/catalog_sync.html",
        spec=SPECS[SETTING],
        value=value,
        errors=errors,
        last=last_sync(db_session()),
    ), status


@bp.get("")
@requires(PERMISSION)
def index():
    return _page(settings.get(db_session(), cipher(), SETTING) or "", {})


@bp.post("/settings")
@requires(PERMISSION)
def save_settings():
    typed = request.form.get(SETTING, "")
    try:
        with writing() as session:
            try:
                changed = settings_commands.save(session, acting(), cipher(), {SETTING: typed})
            except settings_commands.SettingsRejected as rejected:
                raise Rejected(dict(rejected.errors)) from None
    except Rejected as rejected:
        return _page(typed, rejected.detail, 400)
    flash("Catalog setting saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("catalog_sync.index"))


@bp.post("/sync")
@requires(PERMISSION)
def sync_now():
    with writing() as session:
        request_sync(session, acting())
    flash("The sync from the Meta catalog has started; this page shows the outcome when it is done.")
    back = "products.index" if request.form.get("back") == "products" and "products.index" in app_views() else None
    return redirect(url_for(back or "catalog_sync.index"))


def app_views() -> set[str]:
    return set(current_app.view_functions)
