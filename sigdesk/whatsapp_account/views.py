"""Settings → Connection: connect with a token (or type the IDs), the address Meta calls, a connection check.

Connecting with a token goes: find the numbers the token can see (network), pick one, store it (command);
then subscribe the app to the account's webhooks with the callback URL (network), and remember it
(command). Nothing here talks to Meta inside a database transaction.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from sigdesk.errors import UserError
from sigdesk.settings import commands as settings_commands, services as settings
from sigdesk.settings.specs import SPECS
from sigdesk.web import acting, cipher, db_session, requires, shows_secret, writing
from sigdesk.whatsapp_account import commands, services as account

bp = Blueprint("whatsapp_account", __name__, url_prefix="/admin/whatsapp")


def page_context(**extra: Any) -> dict[str, Any]:
    role = current_user.role if current_user.is_authenticated else None
    return {**account.overview(db_session(), cipher(), request.url_root, role), **extra}


def _page(errors: dict[str, str] | None = None, status: int = 200, **extra: Any):
    session = db_session()
    return render_template(
        "whatsapp_account/index.html",
        plain=[(SPECS[key], settings.get(session, cipher(), key)) for key in account.PLAIN_KEYS],
        secrets=[(SPECS[key], settings.is_set(session, key)) for key in account.SECRET_KEYS],
        errors=errors or {},
        form=request.form,
        **page_context(**extra),
    ), status


def _refused(exc: UserError, **extra: Any):
    return _page({exc.field or "connect": exc.message}, exc.status, error=exc.message, **extra)


@bp.get("/")
@requires("settings.manage")
def index():
    return _page()


@bp.post("/")
@requires("settings.manage")
def save():
    """The details typed by hand; a changed Graph API address goes through its own, stricter command."""
    keys = account.PLAIN_KEYS + account.SECRET_KEYS
    values = settings_commands.from_form(keys, request.form, blank_keeps=True)
    address = (request.form.get(account.GRAPH_ADDRESS) or "").strip().rstrip("/")
    try:
        with writing() as session:
            changed = []
            if address and address != settings.get(session, cipher(), account.GRAPH_ADDRESS):
                changed += commands.set_graph_address(
                    session, acting(), cipher(), address, request.form.get(account.TOKEN)
                )
            changed += settings_commands.save(session, acting(), cipher(), values)
    except settings_commands.SettingsRejected as rejected:
        return _page(rejected.errors, status=400)
    except UserError as exc:
        return _refused(exc)
    flash("WhatsApp settings saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("whatsapp_account.index"))


@bp.post("/find")
@requires("settings.manage")
def find():
    token = request.form.get(account.TOKEN)
    secret = request.form.get("whatsapp.app_secret")
    try:
        discovery = account.find_numbers(db_session(), cipher(), token, request.form.get("whatsapp.waba_id"))
        with writing() as session:
            number = commands.found(session, acting(), cipher(), discovery, token, secret)
    except UserError as exc:
        return _refused(exc)
    if number is not None:
        return _page(connected=discovery.find(number.id), discovery=discovery)
    return _page(discovery=discovery)


@bp.post("/choose")
@requires("settings.manage")
def choose():
    try:
        discovery = account.find_numbers(db_session(), cipher(), None)
        with writing() as session:
            commands.connect(session, acting(), cipher(), discovery, request.form.get("phone_number_id") or "")
    except UserError as exc:
        return _refused(exc)
    return _page(connected=discovery.find(request.form.get("phone_number_id") or ""), discovery=discovery)


@bp.post("/subscribe")
@requires("settings.manage")
def subscribe_webhooks():
    try:
        url = commands.subscribe(
            writing,
            acting(),
            cipher(),
            request.form.get(account.CALLBACK),
            request.form.get("relay_verify_token"),
            request.url_root,
        )
    except UserError as exc:
        return _refused(exc)
    flash(f"Meta now sends this account's webhooks to {url}.", "success")
    return redirect(url_for("whatsapp_account.index"))


@bp.post("/verify-token")
@requires("settings.manage")
@shows_secret
def new_verify_token():
    token = account.new_verify_token()
    with writing() as session:
        settings_commands.save(session, acting(), cipher(), {"whatsapp.verify_token": token})
    return render_template("whatsapp_account/verify_token.html", token=token, **page_context())


@bp.post("/test")
@requires("settings.manage")
def check_connection():
    return _page(check=account.test_connection(db_session(), cipher()))
