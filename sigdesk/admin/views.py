"""Team management, the audit log and login history, and general settings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from sigdesk.audit import services as audit
from sigdesk.auth import services as accounts
from sigdesk.auth.roles import may_manage
from sigdesk.models import Role, User
from sigdesk.security import invalidate_policy
from sigdesk.settings import services as settings
from sigdesk.settings.specs import SPECS
from sigdesk.web import Rejected, actor, app_config, cipher, client_ip, db_session, requires, writing

bp = Blueprint("admin", __name__, url_prefix="/admin")

EDITABLE_SETTINGS = ("general.business_name", "server.allowed_networks")
OWNER_SETTINGS = ("security.require_2fa",)


def _target(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/team")
@requires("team.manage")
def team():
    me = actor()
    users = accounts.list_users(db_session())
    return render_template(
        "admin/team.html",
        users=users,
        roles=[role.value for role in Role],
        can_manage=lambda target: may_manage(me.role, target.role),
        assignable=[role.value for role in Role if may_manage(me.role, Role.AGENT.value, role.value)],
    )


@bp.post("/team")
@requires("team.manage")
def add_member():
    form = request.form
    try:
        new = accounts.new_team_member(
            actor(), form.get("email", ""), form.get("name", ""), form.get("role", "agent"),
            form.get("password", ""), app_config().bcrypt_rounds,
        )
        with writing() as dbs:
            user = accounts.add_team_member(dbs, actor(), new)
            audit.record(dbs, "team.user_added", actor=actor(), target=user.email, ip=client_ip(), detail={"role": user.role})
    except accounts.AccountError as exc:
        flash(str(exc))
        return redirect(url_for("admin.team"))
    flash(f"{user.name} can now sign in as {user.role}.")
    return redirect(url_for("admin.team"))


def _team_change(user_id: int, change, action: str, message: str, **detail):
    try:
        with writing() as dbs:
            target = _target(user_id)
            extra = change(dbs, target) or {}
            audit.record(dbs, action, actor=actor(), target=target.email, ip=client_ip(), detail={**detail, **extra} or None)
    except accounts.AccountError as exc:
        flash(str(exc))
        return redirect(url_for("admin.team"))
    flash(message.format(name=target.name))
    return redirect(url_for("admin.team"))


@bp.post("/team/<int:user_id>/role")
@requires("team.manage")
def change_role(user_id: int):
    new_role = request.form.get("role", "")

    def change(dbs, target):
        return {"from": accounts.change_role(dbs, actor(), target, new_role)}

    return _team_change(user_id, change, "team.role_changed", "{name}'s role is now " + new_role, to=new_role)


@bp.post("/team/<int:user_id>/deactivate")
@requires("team.manage")
def deactivate(user_id: int):
    return _team_change(
        user_id, lambda dbs, target: accounts.set_active(dbs, actor(), target, False),
        "team.user_deactivated", "{name} can no longer sign in.",
    )


@bp.post("/team/<int:user_id>/activate")
@requires("team.manage")
def activate(user_id: int):
    return _team_change(
        user_id, lambda dbs, target: accounts.set_active(dbs, actor(), target, True),
        "team.user_activated", "{name} can sign in again.",
    )


@bp.post("/team/<int:user_id>/reset-2fa")
@requires("team.manage")
def reset_two_factor(user_id: int):
    return _team_change(
        user_id, lambda dbs, target: accounts.admin_reset_totp(dbs, actor(), target),
        "team.2fa_reset", "{name}'s two-factor authentication was reset.",
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
    events = audit.list_audit(dbs, action=args.get("action") or None, actor_email=args.get("actor") or None, since=since, until=until)
    logins = audit.list_logins(dbs, email=args.get("email") or None, success=outcome, since=since, until=until)
    return render_template("admin/audit.html", events=events, logins=logins, args=args)


@bp.route("/settings", methods=["GET", "POST"])
@requires("settings.manage")
def general_settings():
    dbs = db_session()
    me = actor()
    editable = EDITABLE_SETTINGS + (OWNER_SETTINGS if me.role == Role.OWNER.value else ())
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            with writing() as dbs:
                turning_on_2fa = bool(request.form.get("security.require_2fa")) and not settings.get(dbs, cipher(), "security.require_2fa")
                changed, errors = settings.apply_form(dbs, cipher(), editable, request.form)
                if "security.require_2fa" in changed and turning_on_2fa and not me.totp_enabled:
                    errors["security.require_2fa"] = "Turn on two-factor authentication for your own account first, so you are not locked out."
                if errors:
                    raise Rejected(errors)
                for key in changed:
                    audit.record(dbs, "settings.changed", actor=me, target=key, ip=client_ip())
        except Rejected as rejected:
            errors = rejected.detail
        else:
            invalidate_policy()
            flash("Settings saved." if changed else "Nothing changed.")
            return redirect(url_for("admin.general_settings"))
    values = {key: (request.form.get(key) if key in errors else settings.get(dbs, cipher(), key)) for key in editable}
    return render_template("admin/settings.html", specs=[SPECS[key] for key in editable], values=values, errors=errors), (400 if errors else 200)
