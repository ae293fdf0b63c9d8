"""First-run setup, login with optional TOTP or recovery code, logout."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user
from sqlalchemy.orm import Session

from sigdesk.auth import services as accounts
from sigdesk.extensions import limiter, login_rate_limit
from sigdesk.models import Role, User
from sigdesk.onboarding import services as onboarding
from sigdesk.web import LoginUser, acting, app_config, cipher, client_ip, db_session, public, requires, writing

bp = Blueprint("auth", __name__)

PENDING_KEY = "pending_2fa"
PENDING_SECONDS = 300


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


def _record_login(dbs: Session, user: User, method: str) -> None:
    accounts.signed_in(dbs, user, client_ip(), request.user_agent.string, method)


def _signed_in(user: User, landing: str | None = None):
    """After the login was recorded and committed."""
    session.clear()
    login_user(LoginUser(user))
    return redirect(landing or _safe_next(request.args.get("next")))


@bp.route("/setup", methods=["GET", "POST"])
@public
def setup():
    if accounts.user_count(db_session()) > 0:
        return redirect(url_for("auth.login"))
    error = None
    form = request.form
    if request.method == "POST":
        if form.get("password") != form.get("password_confirm"):
            error = "The two passwords do not match"
        else:
            try:
                new = accounts.new_user(
                    form.get("email", ""),
                    form.get("name", ""),
                    Role.OWNER.value,
                    form.get("password", ""),
                    app_config().bcrypt_rounds,
                )
                with writing() as dbs:
                    owner = None
                    if accounts.user_count(dbs) == 0:  # another window may have finished setup meanwhile
                        owner = accounts.add_user(dbs, acting(), new)
                        onboarding.start(dbs, cipher())
                        _record_login(dbs, owner, "setup")
            except accounts.AccountError as exc:
                error = str(exc)
            else:
                if owner is None:
                    return redirect(url_for("auth.login"))
                return _signed_in(owner, landing=url_for("onboarding.index"))
    return render_template("auth/setup.html", error=error, form=form), (400 if error else 200)


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(login_rate_limit, methods=["POST"])
def login():
    error = None
    email = request.form.get("email", "")
    if request.method == "POST":
        result = accounts.authenticate(db_session(), email, request.form.get("password", ""))
        if result.ok and result.user.totp_enabled:
            session[PENDING_KEY] = {"id": result.user.id, "v": result.user.session_version, "at": time.time()}
            return redirect(url_for("auth.verify", next=request.args.get("next")))
        with writing() as dbs:
            result = accounts.recheck_login(result)
            if result.ok:
                _record_login(dbs, result.user, "password")
            else:
                accounts.sign_in_failed(dbs, email, result.user, client_ip(), request.user_agent.string, result.reason)
        if result.ok:
            return _signed_in(result.user)
        error = "This account is deactivated" if result.reason == "deactivated" else "Wrong email or password"
    return render_template("auth/login.html", error=error, email=email), (401 if error else 200)


def _pending_user(dbs: Session, pending: dict | None) -> User | None:
    """The user who gave the right password a moment ago, while that still counts."""
    user = dbs.get(User, pending["id"]) if pending else None
    if (
        user is None
        or not user.is_active
        or user.session_version != pending.get("v")
        or time.time() - pending.get("at", 0) > PENDING_SECONDS
    ):
        return None
    return user


def _sign_in_again():
    session.pop(PENDING_KEY, None)
    flash("Please sign in again.")
    return redirect(url_for("auth.login"))


@bp.route("/login/verify", methods=["GET", "POST"])
@public
@limiter.limit(login_rate_limit, methods=["POST"])
def verify():
    pending = session.get(PENDING_KEY)
    if _pending_user(db_session(), pending) is None:
        return _sign_in_again()
    error = None
    if request.method == "POST":
        code = request.form.get("code", "")
        with writing() as dbs:
            user = _pending_user(dbs, pending)
            method = (
                accounts.second_factor(dbs, cipher(), user, code, client_ip(), request.user_agent.string)
                if user is not None
                else None
            )
        if user is None:
            return _sign_in_again()
        if method is not None:
            return _signed_in(user)
        error = "That code is not valid (codes work once; recovery codes too)"
    return render_template("auth/verify.html", error=error), (401 if error else 200)


@bp.post("/logout")
@requires("app.use")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
