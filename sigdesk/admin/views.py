"""Team management, the audit log and login history, and general settings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from sigdesk.audit import services as audit
from sigdesk.auth import services as accounts
from sigdesk.roles import can, may_manage
from sigdesk.security import allow_list_problem
from sigdesk.models import Role, User
from sigdesk.settings import commands as settings_commands, services as settings
from sigdesk.settings.specs import SPECS, SettingError
from sigdesk.web import acting, actor, app_config, cipher, db_session, requires, writing

bp = Blueprint("admin", __name__, url_prefix="/admin")

ALLOWED_NETWORKS = "server.allowed_networks"
EDITABLE_SETTINGS = ("general.business_name", ALLOWED_NETWORKS)
OWNER_SETTINGS = ("security.require_2fa",)


def _target(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/team")
@requires("team.manage")
def team():
    return _team_page()


def _team_page(add_error: str = "", typed: dict[str, str] | None = None):
    """The team; after a refused "Add someone" the message sits by that form, which keeps what was typed."""
    me = actor()
    users = accounts.list_users(db_session())
    page = render_template(
        "admin/team.html",
        users=users,
        roles=[role.value for role in Role],
        can_manage=lambda target: may_manage(me.role, target.role),
        assignable=[role.value for role in Role if may_manage(me.role, Role.AGENT.value, role.value)],
        add_error=add_error,
        typed=typed or {},
    )
    return page, (400 if add_error else 200)


@bp.post("/team")
@requires("team.manage")
def add_member():
    form = request.form
    try:
        new = accounts.new_team_member(
            actor(),
            form.get("email", ""),
            form.get("name", ""),
            form.get("role", "agent"),
            form.get("password", ""),
            app_config().bcrypt_rounds,
        )
        with writing() as dbs:
            user = accounts.add_user(dbs, acting(), new)
    except accounts.AccountError as exc:
        return _team_page(str(exc), {key: form.get(key, "") for key in ("name", "email", "role")})
    flash(f"{user.name} can now sign in as {user.role}.")
    return redirect(url_for("admin.team"))


def _team_change(user_id: int, change, message: str):
    try:
        with writing() as dbs:
            target = _target(user_id)
            change(dbs, target)
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.team"))
    flash(message.format(name=target.name))
    return redirect(url_for("admin.team"))


@bp.post("/team/<int:user_id>/role")
@requires("team.manage")
def change_role(user_id: int):
    new_role = request.form.get("role", "")
    return _team_change(
        user_id,
        lambda dbs, target: accounts.change_role(dbs, acting(), target, new_role),
        "{name}'s role is now " + new_role,
    )


@bp.post("/team/<int:user_id>/deactivate")
@requires("team.manage")
def deactivate(user_id: int):
    return _team_change(
        user_id,
        lambda dbs, target: accounts.set_active(dbs, acting(), target, False),
        "{name} can no longer sign in; their API tokens are revoked.",
    )


@bp.post("/team/<int:user_id>/activate")
@requires("team.manage")
def activate(user_id: int):
    return _team_change(
        user_id, lambda dbs, target: accounts.set_active(dbs, acting(), target, True), "{name} can sign in again."
    )


@bp.post("/team/<int:user_id>/reset-2fa")
@requires("team.manage")
def reset_two_factor(user_id: int):
    return _team_change(
        user_id,
        lambda dbs, target: accounts.reset_two_factor(dbs, acting(), target),
        "{name}'s two-factor authentication was reset.",
    )


def _parse_day(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        abort(400, description=f"'{text}' is not a date (use YYYY-MM-DD)")


@bp.get("/audit")
@requires("audit.view")
def audit_log():
    args = request.args
    since = _parse_day(args.get("since"))
    until = _parse_day(args.get("until"))
    if until:
        until += timedelta(days=1)
    dbs = db_session()
    outcome = {"success": True, "failed": False}.get(args.get("outcome", ""))
    events = audit.list_audit(
        dbs, action=args.get("action") or None, actor_email=args.get("actor") or None, since=since, until=until
    )
    logins = audit.list_logins(dbs, email=args.get("email") or None, success=outcome, since=since, until=until)
    return render_template("admin/audit.html", events=events, logins=logins, args=args)


def _refuse_own_lockout(values: dict) -> None:
    """An allow-list saved from this page must admit the address saving it (the CLI may save any)."""
    text = values.get(ALLOWED_NETWORKS)
    if text is None:
        return
    try:
        problem = allow_list_problem(text)
    except SettingError:
        return  # not a list at all: save() names what is wrong with it
    if problem:
        raise settings_commands.SettingsRejected({ALLOWED_NETWORKS: problem})


@bp.route("/settings", methods=["GET", "POST"])
@requires("settings.manage")
def general_settings():
    dbs = db_session()
    me = actor()
    editable = EDITABLE_SETTINGS + (OWNER_SETTINGS if can(me.role, "security.manage") else ())
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = settings_commands.from_form(editable, request.form)
        try:
            _refuse_own_lockout(values)
            with writing() as dbs:
                changed = settings_commands.save(dbs, acting(), cipher(), values)
        except settings_commands.SettingsRejected as rejected:
            errors = rejected.errors
        else:
            flash("Settings saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("admin.general_settings"))
    values = {key: (request.form.get(key) if key in errors else settings.get(dbs, cipher(), key)) for key in editable}
    return render_template(
        "admin/settings.html", specs=[SPECS[key] for key in editable], values=values, errors=errors
    ), (400 if errors else 200)
