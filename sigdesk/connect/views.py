"""Settings → WhatsApp: the Meta credentials, the webhook address to paste into Meta, a connection check."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sigdesk.audit.services import record
from sigdesk.connect import services as connect
from sigdesk.settings import services as settings
from sigdesk.settings.specs import SPECS
from sigdesk.web import Rejected, actor, cipher, client_ip, db_session, requires, writing

bp = Blueprint("connect", __name__, url_prefix="/admin/whatsapp")


def _page(errors: dict[str, str] | None = None, check: connect.ConnectionCheck | None = None, status: int = 200):
    session = db_session()
    return render_template(
        "connect/index.html",
        plain=[(SPECS[key], settings.get(session, cipher(), key)) for key in connect.PLAIN_KEYS],
        secrets=[(SPECS[key], settings.is_set(session, key)) for key in connect.SECRET_KEYS],
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
    try:
        with writing() as session:
            changed, errors = settings.apply_form(session, cipher(), connect.PLAIN_KEYS + connect.SECRET_KEYS, request.form, blank_keeps=True)
            if errors:
                raise Rejected(errors)
            for key in changed:
                record(session, "settings.changed", actor=actor(), target=key, ip=client_ip())
    except Rejected as rejected:
        return _page(rejected.detail, status=400)
    _settings_changed()
    flash("WhatsApp settings saved." if changed else "Nothing changed.")
    return redirect(url_for("connect.index"))


@bp.post("/verify-token")
@requires("settings.manage")
def new_verify_token():
    with writing() as session:
        connect.generate_verify_token(session, cipher())
        record(session, "settings.changed", actor=actor(), target="whatsapp.verify_token", ip=client_ip())
    _settings_changed()
    return render_template("connect/verify_token.html", token=settings.get(session, cipher(), "whatsapp.verify_token"),
                           callback_url=request.url_root + "webhooks/whatsapp")


@bp.post("/test")
@requires("settings.manage")
def check_connection():
    return _page(check=connect.test_connection(db_session(), cipher()))


def _settings_changed() -> None:
    from sigdesk.inbound.views import invalidate_app_secret

    invalidate_app_secret()
