"""Settings → Inbound: how Meta's webhooks reach SigDesk (the relay, or directly), and how that is going."""

from __future__ import annotations

from datetime import datetime, time, timezone

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for

from sigdesk.db import utcnow
from sigdesk.openapi import ui_call
from sigdesk.relay_client import client as relay, commands as relay_commands, receive
from sigdesk.relay_client.schemas import InboundStatus
from sigdesk.settings import services as settings
from sigdesk.errors import UserError
from sigdesk.settings.specs import SettingError, parse_http_url
from sigdesk.web import acting, cipher, db_session, error_response, requires, writing
from sigdesk.whatsapp_account.services import callback_suggestion

bp = Blueprint("relay", __name__, url_prefix="/admin/inbound")

LABELS = {
    "starting": "starting",
    "off": "direct",
    "unpaired": "not paired",
    "waiting": "waiting for the app secret",
    "connected": "connected",
    "reconnecting": "reconnecting",
    "offline": "offline",
    "refused": "token refused",
}


def _puller() -> relay.Puller:
    return current_app.extensions["sigdesk.relay"]


def _summary() -> dict:
    session = db_session()
    config = relay.read_config(session, cipher())
    status = _puller().status
    last_event = status.last_event_at or receive.last_relayed_at(session, config.install)
    state = status.state
    if config.mode != "relay":
        state = "off"
    elif not (config.url and config.token and config.install):
        state = "unpaired"
    return {
        "mode": config.mode,
        "state": state,
        "label": LABELS.get(state, state),
        "message": status.message,
        "relay_url": config.url,
        "paired": bool(config.url and config.token and config.install),
        "last_event_at": last_event.isoformat() if last_event else None,
        "last_event_age_seconds": round((utcnow() - last_event).total_seconds()) if last_event else None,
        "last_contact_at": status.last_contact_at.isoformat() if status.last_contact_at else None,
        "backlog": status.backlog,
        "oldest_unacked_age_seconds": status.oldest_unacked_age,
        "quarantined": receive.quarantined_count(session),
    }


@bp.get("/")
@requires("settings.manage")
def index():
    return _page()


def _page(error: str | None = None, status: int = 200):
    return render_template(
        "relay/index.html",
        summary=_summary(),
        error=error,
        form=request.form,
        callback=callback_suggestion(db_session(), cipher(), request.url_root),
    ), status


@bp.get("/status.json")
@requires("settings.manage")
@ui_call("inboundStatus", (200, InboundStatus))
def status_json():
    return jsonify(_summary())


@bp.post("/pair")
@requires("settings.manage")
def pair():
    code = (request.form.get("code") or "").strip()
    try:
        url = parse_http_url(request.form.get("relay_url") or "")
    except SettingError as exc:
        return _page(str(exc), 400)
    if not code:
        return _page("Enter the pairing code that 'sigdesk relay add-install' printed.", 400)
    try:
        url = relay_commands.check_relay_address(db_session(), acting(), cipher(), url)
    except UserError as exc:
        return _page(str(exc), exc.status)
    try:
        pairing = relay.pair(url, code)
    except relay.RelayProblem as exc:
        return _page(f"Pairing failed. {exc}", 400 if not isinstance(exc, relay.RelayUnavailable) else 502)
    with writing() as session:
        relay_commands.pair(session, acting(), cipher(), url, pairing)
    flash(f"Paired with the relay as '{pairing.name}'. Events now come through the relay.")
    return redirect(url_for("relay.index"))


@bp.post("/mode")
@requires("settings.manage")
def mode():
    wanted = request.form.get("mode", "")
    try:
        with writing() as session:
            relay_commands.set_mode(session, acting(), cipher(), wanted)
    except UserError as exc:
        return _page(str(exc), 400)
    flash(
        "Inbound webhooks now come through the relay."
        if wanted == "relay"
        else "Inbound webhooks now come directly to this server."
    )
    return redirect(url_for("relay.index"))


@bp.post("/unpair")
@requires("settings.manage")
def unpair():
    with writing() as session:
        relay_commands.unpair(session, acting(), cipher())
    flash("Unpaired from the relay. Inbound webhooks now come directly to this server.")
    return redirect(url_for("relay.index"))


@bp.post("/replay")
@requires("settings.manage")
def replay():
    text = (request.form.get("since") or "").strip()
    try:
        since = datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time.min, tzinfo=timezone.utc)
    except ValueError:
        return _page("Pick the date to replay from (YYYY-MM-DD).", 400)
    config = relay.read_config(db_session(), cipher())
    if config.mode != "relay" or not (config.url and config.token):
        return _page("Replay needs a paired relay.", 400)
    try:
        with relay.RelayClient(config.url, config.token) as client:
            result = client.replay(since)
    except relay.RelayProblem as exc:
        return _page(f"Replay failed: {exc}", 400 if not isinstance(exc, relay.RelayUnavailable) else 502)
    with writing() as session:
        relay_commands.replayed(session, acting(), text)
    count = result.get("redelivering", 0)
    flash(
        f"The relay is sending {count} event{'s' if count != 1 else ''} again from {text}; "
        "events SigDesk already has are skipped."
        + (f" It keeps events from {result['oldest_kept'][:10]} on." if result.get("oldest_kept") else "")
    )
    return redirect(url_for("relay.index"))


@bp.post("/recheck")
@requires("settings.manage")
def recheck():
    """After correcting the app secret: the relay sends the rejected events again (SigDesk kept only
    their digests), and those that now verify are stored and processed."""
    session = db_session()
    if not settings.get(session, cipher(), "whatsapp.app_secret"):
        return error_response(400, "Enter the Meta app secret first (Settings → Connection).")
    since = receive.oldest_rejected_at(session)
    if since is None:
        flash("No relayed event is kept aside.")
        return redirect(url_for("relay.index"))
    config = relay.read_config(session, cipher())
    if config.mode != "relay" or not (config.url and config.token):
        return _page("Checking again needs a paired relay: it sends the events again.", 400)
    try:
        with relay.RelayClient(config.url, config.token) as client:
            result = client.replay(since)
    except relay.RelayProblem as exc:
        return _page(
            f"The relay could not send them again: {exc}", 400 if not isinstance(exc, relay.RelayUnavailable) else 502
        )
    text = since.astimezone(timezone.utc).isoformat()
    with writing() as session:
        relay_commands.recheck(session, acting(), text)
    count = result.get("redelivering", 0)
    flash(
        f"The relay is sending {count} event{'s' if count != 1 else ''} again; "
        "those that match the app secret now are processed as they arrive."
    )
    return redirect(url_for("relay.index"))
