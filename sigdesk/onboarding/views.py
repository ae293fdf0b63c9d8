"""The first run, after the owner account exists: connect WhatsApp, choose how webhooks arrive, set up backups.

Every step stores through the pages that own those settings (connect, relay, backup services and
the one settings store), can be skipped, and is remembered, so the wizard resumes where the owner
left it and never shows again once finished.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, session as cookie, url_for
from flask_login import current_user
from sqlalchemy.orm import Session

from sigdesk.errors import UserError
from sigdesk.whatsapp_account import commands as connect_commands, services as connect
from sigdesk.onboarding import services as onboarding
from sigdesk.relay_client import client as relay, commands as relay_commands
from sigdesk.roles import can
from sigdesk.settings import commands as settings_commands, services as settings
from sigdesk.settings.specs import SPECS, SettingError, parse_http_url
from sigdesk.web import (
    Rejected,
    acting,
    cipher,
    db_session,
    error_response,
    requires,
    shows_secret,
    wants_json,
    writing,
)

bp = Blueprint("onboarding", __name__, url_prefix="/welcome")

WIZARD = "wizard"
PERMISSION = "security.manage"  # owner only: the last step sets up backups, which hold everything
WHATSAPP_KEYS = ("whatsapp.phone_number_id", "whatsapp.waba_id", "whatsapp.access_token", "whatsapp.app_secret")
SCHEDULES = ("daily", "weekly", "off")
# where each step lives afterwards (sigdesk/navigation.py), and what it sets up
PLACES = {"whatsapp": "Connection", "inbound": "Inbound", "backup": "Backups"}
SKIPPED = "wizard_skipped"
# Asked on the welcome step, prefilled with what this computer suggests (its locale's country and currency, its
# zone), because numbers typed without a prefix, prices and every date depend on them from the first day.
BUSINESS_KEYS = ("general.business_name", "general.timezone", "contacts.default_country", "sales.currency")
LABELS = {"welcome": "Welcome", "whatsapp": "WhatsApp", "inbound": "Inbound messages", "backup": "Backups"}


def _finished_redirect():
    return redirect(url_for("home.index"))


def _page(
    step: str,
    status: int = 200,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    template: str | None = None,
    **extra,
):
    if error and wants_json():
        return error_response(status, error)
    session = db_session()
    reached = onboarding.STEPS.index(onboarding.step(session, cipher()) or onboarding.STEPS[0])
    context = {
        "step": step,
        "steps": [
            {
                "name": name,
                "label": LABELS[name],
                "state": "current" if name == step else "done" if index < reached else "",
            }
            for index, name in enumerate(onboarding.STEPS)
        ],
        "error": error,
        "errors": errors or {},
        "form": request.form,
        **connect.overview(session, cipher(), request.url_root, current_user.role),
    }
    if step == "whatsapp":
        context["fields"] = [(SPECS[key], settings.is_set(session, key)) for key in WHATSAPP_KEYS]
        context["secret_keys"] = connect.SECRET_KEYS
    elif step == "inbound":
        context["mode"] = settings.get(session, cipher(), "inbound.mode")
        context["relay_url"] = settings.get(session, cipher(), "relay.url")
        context["verify_token"] = settings.get(session, cipher(), connect.VERIFY_TOKEN)
    elif step == "welcome":
        context["business"] = {
            key: request.form.get(key, "") if errors else settings.get(session, cipher(), key) for key in BUSINESS_KEYS
        }
        context["specs"] = SPECS
    elif step == "backup":
        context["folder"] = settings.get(session, cipher(), "backup.folder") or ""
        context["suggested_folder"] = str(onboarding.suggested_backup_folder())
        context["schedule"] = settings.get(session, cipher(), "backup.schedule")
        context["passphrase_set"] = settings.is_set(session, "backup.passphrase")
    context.update(extra)
    return render_template(template or f"onboarding/{step}.html", **context), status


def _next(past: str, save: Callable[[Session], None] | None = None):
    """The step's settings (save) and the wizard's progress go in one write: a refused save never moves it on."""
    with writing() as session:
        if save is not None:
            save(session)
        following = onboarding.advance(session, cipher(), past)
        if following == onboarding.DONE:
            _finished(session)
    if following == onboarding.DONE:
        flash(_finished_message(db_session()))
        cookie.pop(SKIPPED, None)
        return redirect(url_for("home.index"))
    return redirect(url_for("onboarding.show", step=following))


def _left_to_do(session: Session) -> list[str]:
    """Steps skipped in this sign-in, and any whose settings are still missing (skipped in an earlier one)."""
    skipped = set(cookie.get(SKIPPED, []))
    if connect.missing(session, cipher()):
        skipped.add("whatsapp")
    if settings.get(session, cipher(), "backup.schedule") == "off" or not settings.is_set(session, "backup.passphrase"):
        skipped.add("backup")
    return [step for step in PLACES if step in skipped]


def _places(steps: list[str]) -> str:
    names = [f"Settings → {PLACES[step]}" for step in steps]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _finished_message(session: Session) -> str:
    left = _left_to_do(session)
    if not left:
        return f"SigDesk is set up. You can change any of this later under {_places(list(PLACES))}."
    return f"First-run setup finished. What you skipped can be done later under {_places(left)}."


def _finished(session: Session) -> None:
    onboarding.finish(session, acting(WIZARD), cipher())


def _finish(message: str):
    with writing() as session:
        _finished(session)
    flash(message)
    return redirect(url_for("home.index"))


@bp.get("/")
@requires(PERMISSION)
def index():
    session = db_session()
    current = onboarding.step(session, cipher())
    if current == onboarding.DONE:
        return _finished_redirect()
    if current is None:
        with writing() as session:
            onboarding.start(session, cipher())
    return redirect(url_for("onboarding.show", step=current or onboarding.STEPS[0]))


@bp.get("/<step>")
@requires(PERMISSION)
@shows_secret  # the inbound step shows the webhook verify token
def show(step: str):
    if step not in onboarding.STEPS:
        return error_response(404, "There is no such first-run step.")
    if onboarding.is_finished(db_session(), cipher()):
        return _finished_redirect()
    return _page(step)


@bp.post("/skip")
@requires(PERMISSION)
def skip_all():
    if onboarding.is_finished(db_session(), cipher()):
        return _finished_redirect()
    return _finish(f"First-run setup skipped. Set things up whenever you are ready under {_places(list(PLACES))}.")


@bp.post("/<step>")
@requires(PERMISSION)
@shows_secret
def submit(step: str):
    if step not in onboarding.STEPS:
        return error_response(404, "There is no such first-run step.")
    if onboarding.is_finished(db_session(), cipher()):
        return _finished_redirect()
    if step == "welcome" and request.form.get("action") != "skip":
        return _save_business()
    if request.form.get("action") == "skip":
        if step in PLACES:
            cookie[SKIPPED] = sorted({*cookie.get(SKIPPED, []), step})
        return _next(step)
    if step == "whatsapp" and request.form.get("action") in ("find", "choose", "continue"):
        return _connect_whatsapp(request.form["action"])
    return {"whatsapp": _save_whatsapp, "inbound": _save_inbound, "backup": _save_backup}[step]()


def _save_business():
    def save(session: Session) -> None:
        changes = settings_commands.from_form(BUSINESS_KEYS, request.form)
        settings_commands.save(session, acting(WIZARD), cipher(), changes)

    try:
        return _next("welcome", save)
    except settings_commands.SettingsRejected as rejected:
        return _page("welcome", 400, errors=rejected.errors)


def _connect_whatsapp(action: str):
    """With only the token and app secret: find the numbers, let the owner pick, show what was connected."""
    if action == "continue":
        return _next("whatsapp")
    token = request.form.get("whatsapp.access_token")
    secret = request.form.get("whatsapp.app_secret")
    try:
        discovery = connect.find_numbers(
            db_session(), cipher(), token if action == "find" else None, request.form.get("whatsapp.waba_id")
        )
        with writing() as session:
            if action == "choose":
                chosen: str | None = request.form.get("phone_number_id") or ""
                connect_commands.connect(session, acting(WIZARD), cipher(), discovery, chosen, None, secret)
            else:
                number = connect_commands.found(session, acting(WIZARD), cipher(), discovery, token, secret)
                chosen = number.id if number is not None else None
    except UserError as exc:
        return _page("whatsapp", exc.status, error=exc.message, errors={exc.field or "connect": exc.message})
    if chosen is None:  # several numbers: the owner picks one
        return _page("whatsapp", discovery=discovery)
    return _page(
        "whatsapp",
        template="onboarding/whatsapp_connected.html",
        connected=discovery.find(chosen),
        discovery=discovery,
        verify_token=settings.get(db_session(), cipher(), connect.VERIFY_TOKEN),
    )


@bp.post("/webhooks")
@requires(PERMISSION)
def subscribe_webhooks():
    """From the inbound step: ask Meta to send the account's webhooks to the callback URL (relay or public)."""
    try:
        url = connect_commands.subscribe(
            writing,
            acting(WIZARD),
            cipher(),
            request.form.get(connect.CALLBACK),
            request.form.get("relay_verify_token"),
            request.url_root,
        )
    except UserError as exc:
        return _page("inbound", exc.status, error=exc.message, errors={exc.field or "inbound": exc.message})
    flash(f"Meta now sends this account's webhooks to {url}.", "success")
    return redirect(url_for("onboarding.show", step="inbound"))


def _save_whatsapp():
    def save(session: Session) -> None:
        values = settings_commands.from_form(WHATSAPP_KEYS, request.form, blank_keeps=True)
        if not settings.is_set(session, "whatsapp.verify_token"):
            values["whatsapp.verify_token"] = connect.new_verify_token()
        settings_commands.save(session, acting(WIZARD), cipher(), values)
        if connect.missing(session, cipher()):
            raise Rejected(
                {"whatsapp.access_token": "Enter at least the phone number ID and the access token, or skip this step."}
            )

    try:
        return _next("whatsapp", save)
    except settings_commands.SettingsRejected as rejected:
        return _page("whatsapp", 400, error=rejected.message, errors=rejected.errors)
    except Rejected as rejected:
        return _page("whatsapp", 400, error=next(iter(rejected.detail.values())), errors=rejected.detail)


def _save_inbound():
    mode = (request.form.get("mode") or "").strip().lower()
    if mode == "relay":
        code = (request.form.get("code") or "").strip()
        try:
            url = parse_http_url(request.form.get("relay_url") or "")
        except SettingError as exc:
            return _page("inbound", 400, error=str(exc))
        if not code:
            return _page("inbound", 400, error="Enter the pairing code that 'sigdesk relay add-install' printed.")
        try:
            pairing = relay.pair(url, code)
        except relay.RelayProblem as exc:
            return _page("inbound", 400, error=f"Pairing failed: {exc}")

        def save(session: Session) -> None:
            relay_commands.pair(session, acting(WIZARD), cipher(), url, pairing)
    else:

        def save(session: Session) -> None:
            settings_commands.save(session, acting(WIZARD), cipher(), {"inbound.mode": mode})

    try:
        response = _next("inbound", save)
    except settings_commands.SettingsRejected as exc:
        return _page("inbound", 400, error=exc.message)
    return response


def _save_backup():
    form = request.form
    errors: dict[str, str] = {}
    try:
        folder = onboarding.check_backup_folder(
            form.get("backup.folder", ""), may_create=onboarding.suggested_backup_folder()
        )
    except onboarding.OnboardingError as exc:
        errors["backup.folder"] = str(exc)
    keeps_passphrase = settings.is_set(db_session(), "backup.passphrase") and not form.get("passphrase")
    if not keeps_passphrase:
        try:
            passphrase = onboarding.check_passphrase(form.get("passphrase", ""), form.get("passphrase_confirm", ""))
        except onboarding.OnboardingError as exc:
            errors["passphrase"] = str(exc)
    schedule = form.get("backup.schedule", "daily")
    if schedule not in SCHEDULES:
        errors["backup.schedule"] = f"'{schedule}' is not a backup schedule (use daily, weekly or off)"
    if errors:
        return _page("backup", 400, error=next(iter(errors.values())), errors=errors)

    def save(session: Session) -> None:
        values = {"backup.folder": str(folder), "backup.schedule": schedule}
        if not keeps_passphrase:
            values["backup.passphrase"] = passphrase
        settings_commands.save(session, acting(WIZARD), cipher(), values)

    return _next("backup", save)


@bp.app_context_processor
def resume_link() -> dict:
    """Where an owner who left the first run halfway can pick it up again (shown in the page header)."""
    if request.blueprint == "onboarding" or not current_user.is_authenticated or not can(current_user.role, PERMISSION):
        return {}
    current = onboarding.step(db_session(), cipher())
    if current is None or current == onboarding.DONE:
        return {}
    return {"onboarding_resume_url": url_for("onboarding.show", step=current)}
