"""First-run setup, login with optional TOTP or recovery code, logout."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user

from sigdesk.audit.services import record, record_login
from sigdesk.auth import services as accounts
from sigdesk.extensions import limiter, login_rate_limit
from sigdesk.models import Role, User
from sigdesk.onboarding import services as onboarding
from sigdesk.security import invalidate_policy
from sigdesk.web import LoginUser, app_config, cipher, client_ip, db_session, public, requires

bp = Blueprint("auth", __name__)

PENDING_KEY = "pending_2fa"
PENDING_SECONDS = 300


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


def _finish_login(user: User, method: str, landing: str | None = None):
    dbs = db_session()
    accounts.record_successful_login(dbs, user)
    record_login(dbs, user.email, user, client_ip(), request.user_agent.string, True, method)
    record(dbs, "login", actor=user, ip=client_ip(), detail={"method": method})
    dbs.commit()
    session.clear()
    login_user(LoginUser(user))
    return redirect(landing or _safe_next(request.args.get("next")))


@bp.route("/setup", methods=["GET", "POST"])
@public
def setup():
    dbs = db_session()
    if accounts.user_count(dbs) > 0:
        return redirect(url_for("auth.login"))
    error = None
    form = request.form
    if request.method == "POST":
        if form.get("password") != form.get("password_confirm"):
            error = "The two passwords do not match"
        else:
            try:
                owner = accounts.create_user(
                    dbs, form.get("email", ""), form.get("name", ""), Role.OWNER.value,
                    form.get("password", ""), app_config().bcrypt_rounds,
                )
                record(dbs, "setup.owner_created", actor=owner, target=owner.email, ip=client_ip())
                onboarding.start(dbs, cipher())
                dbs.commit()
                invalidate_policy()
                return _finish_login(owner, "setup", landing=url_for("onboarding.index"))
            except accounts.AccountError as exc:
                dbs.rollback()
                error = str(exc)
    return render_template("auth/setup.html", error=error, form=form), (400 if error else 200)


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(login_rate_limit, methods=["POST"])
def login():
    error = None
    email = request.form.get("email", "")
    if request.method == "POST":
        dbs = db_session()
        result = accounts.authenticate(dbs, email, request.form.get("password", ""))
        if not result.ok:
            record_login(dbs, email, result.user, client_ip(), request.user_agent.string, False, result.reason)
            record(dbs, "login.failed", target=email[:254], ip=client_ip(), detail={"reason": result.reason})
            dbs.commit()
            error = "This account is deactivated" if result.reason == "deactivated" else "Wrong email or password"
        elif result.user.totp_enabled:
            session[PENDING_KEY] = {"id": result.user.id, "v": result.user.session_version, "at": time.time()}
            return redirect(url_for("auth.verify", next=request.args.get("next")))
        else:
            return _finish_login(result.user, "password")
    return render_template("auth/login.html", error=error, email=email), (401 if error else 200)


@bp.route("/login/verify", methods=["GET", "POST"])
@public
@limiter.limit(login_rate_limit, methods=["POST"])
def verify():
    pending = session.get(PENDING_KEY)
    dbs = db_session()
    user = dbs.get(User, pending["id"]) if pending else None
    if (
        user is None
        or not user.is_active
        or user.session_version != pending.get("v")
        or time.time() - pending.get("at", 0) > PENDING_SECONDS
    ):
        session.pop(PENDING_KEY, None)
        flash("Please sign in again.")
        return redirect(url_for("auth.login"))
    error = None
    if request.method == "POST":
        code = request.form.get("code", "")
        if accounts.verify_totp(dbs, cipher(), user, code):
            return _finish_login(user, "totp")
        if accounts.use_recovery_code(dbs, user, code):
            record(dbs, "login.recovery_code_used", actor=user, ip=client_ip(),
                   detail={"remaining": accounts.remaining_recovery_codes(user)})
            return _finish_login(user, "recovery_code")
        record_login(dbs, user.email, user, client_ip(), request.user_agent.string, False, "wrong_second_factor")
        record(dbs, "login.failed", target=user.email, ip=client_ip(), detail={"reason": "wrong_second_factor"})
        dbs.commit()
        error = "That code is not valid (codes work once; recovery codes too)"
    return render_template("auth/verify.html", error=error), (401 if error else 200)


@bp.post("/logout")
@requires("app.use")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
