"""Settings → Connection: the Meta credentials, the webhook address to paste into Meta, a connection check."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sigdesk.whatsapp_account import services as account
from sigdesk.settings import commands as settings_commands, services as settings
from sigdesk.settings.specs import SPECS
from sigdesk.web import acting, cipher, db_session, requires, writing

bp = Blueprint("whatsapp_account", __name__, url_prefix="/admin/whatsapp")


def _page(errors: dict[str, str] | None = None, check: account.ConnectionCheck | None = None, status: int = 200):
    session = db_session()
    return render_template(
        "whatsapp_account/index.html",
        plain=[(SPECS[key], settings.get(session, cipher(), key)) for key in account.PLAIN_KEYS],
        secrets=[(SPECS[key], settings.is_set(session, key)) for key in account.SECRET_KEYS],
        callback_url=request.url_root + "webhooks/whatsapp",
        errors=errors or {},
        check=check,
        form=request.form,
    ), status


@bp.get("/")
@requires("settings.manage")
def index():
    return _page()


@bp.post("/")
@requires("settings.manage")
def save():
    keys = account.PLAIN_KEYS + account.SECRET_KEYS
    try:
        with writing() as session:
            changed = settings_commands.save(
                session, acting(), cipher(), settings_commands.from_form(keys, request.form, blank_keeps=True)
            )
    except settings_commands.SettingsRejected as rejected:
        return _page(rejected.errors, status=400)
    flash("WhatsApp settings saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("whatsapp_account.index"))


@bp.post("/verify-token")
@requires("settings.manage")
def new_verify_token():
    token = account.new_verify_token()
    with writing() as session:
        settings_commands.save(session, acting(), cipher(), {"whatsapp.verify_token": token})
    return render_template(
        "whatsapp_account/verify_token.html", token=token, callback_url=request.url_root + "webhooks/whatsapp"
    )


@bp.post("/test")
@requires("settings.manage")
def check_connection():
    return _page(check=account.test_connection(db_session(), cipher()))
