"""First-run setup, login with optional TOTP or recovery code, logout."""

from __future__ import annotations

import math
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, make_response, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from sigdesk.auth import services as accounts, sessions, throttle
from sigdesk.extensions import limiter, login_rate_limit
from sigdesk.models import Role, User
from sigdesk.onboarding import services as onboarding
from sigdesk.web import LoginUser, acting, app_config, cipher, client_ip, db_session, public, requires, writing

bp = Blueprint("auth", __name__)

PENDING_KEY = "pending_2fa"
PENDING_SECONDS = 300
DEVICE_COOKIE = "sigdesk_device"
DEVICE_DAYS = 180
DEVICE_MAX_USERS = 8


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


def _record_login(dbs: Session, user: User, method: str, remember: bool = False) -> str:
    """Record the sign-in and open its server-side session; returns the session's nonce."""
    accounts.signed_in(dbs, user, client_ip(), request.user_agent.string, method)
    return sessions.start(dbs, user, remember)


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="sigdesk.known-device")


def _known_user_ids() -> list[int]:
    """Users who signed in with this browser before (see sigdesk.auth.throttle)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        ids = _devices().loads(raw, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return []
    return [item for item in ids if isinstance(item, int)] if isinstance(ids, list) else []


def _claim(email: str) -> throttle.Claim:
    """Take the attempt against the account's count before the password or code is checked, so that
    concurrent attempts cannot all slip through one lock window (a browser that signed in to the
    account before does not feel the lock). A refused attempt is recorded in the same transaction."""
    user = accounts.find_user(db_session(), email or "")
    known = user is not None and user.id in _known_user_ids()
    with writing() as dbs:
        claim = throttle.claim(dbs, email, known)
        if claim.wait is not None:
            accounts.sign_in_failed(
                dbs, email, accounts.find_user(dbs, email or ""), client_ip(), request.user_agent.string, "locked"
            )
    return claim


def _release(email: str, claim: throttle.Claim) -> None:
    if claim.counted:
        with writing() as dbs:
            throttle.release(dbs, email)


def _locked_page(email: str, wait: timedelta, template: str = "auth/login.html"):
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    error = (
        f"Too many failed sign-ins for this account. Try again in {minutes} minute{'s' if minutes > 1 else ''}, "
        "or from a browser that has signed in to it before."
    )
    response = make_response(render_template(template, error=error, email=email), 429)
    response.headers["Retry-After"] = str(math.ceil(wait.total_seconds()))
    return response


def _signed_in(user: User, nonce: str, remember: bool = False, landing: str | None = None):
    """After the login was recorded and committed."""
    session.clear()
    session.permanent = remember
    login_user(LoginUser(user, nonce))
    response = redirect(landing or _safe_next(request.args.get("next")))
    known = [user.id] + [other for other in _known_user_ids() if other != user.id]
    response.set_cookie(
        DEVICE_COOKIE,
        _devices().dumps(known[:DEVICE_MAX_USERS]),
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


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
                        nonce = _record_login(dbs, owner, "setup")
            except accounts.AccountError as exc:
                error = str(exc)
            else:
                if owner is None:
                    return redirect(url_for("auth.login"))
                return _signed_in(owner, nonce, landing=url_for("onboarding.index"))
    return render_template("auth/setup.html", error=error, form=form), (400 if error else 200)


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(login_rate_limit, methods=["POST"])
def login():
    error = None
    email = request.form.get("email", "")
    remember = request.form.get("remember") == "on"
    if request.method == "POST":
        claim = _claim(email)
        if claim.wait is not None:
            return _locked_page(email, claim.wait)
        result = accounts.authenticate(db_session(), email, request.form.get("password", ""))
        if result.ok and result.user.totp_enabled:
            _release(email, claim)
            session[PENDING_KEY] = {
                "id": result.user.id,
                "v": result.user.session_version,
                "at": time.time(),
                "remember": remember,
            }
            return redirect(url_for("auth.verify", next=request.args.get("next")))
        with writing() as dbs:
            result = accounts.recheck_login(result)
            if result.ok:
                nonce = _record_login(dbs, result.user, "password", remember)
            else:
                accounts.sign_in_failed(dbs, email, result.user, client_ip(), request.user_agent.string, result.reason)
        if result.ok:
            return _signed_in(result.user, nonce, remember)
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
    waiting = _pending_user(db_session(), pending)
    if waiting is None:
        return _sign_in_again()
    error = None
    if request.method == "POST":
        claim = _claim(waiting.email)
        if claim.wait is not None:
            return _locked_page(waiting.email, claim.wait, "auth/verify.html")
        code = request.form.get("code", "")
        remember = bool(pending.get("remember"))
        with writing() as dbs:
            user = _pending_user(dbs, pending)
            method = (
                accounts.second_factor(dbs, cipher(), user, code, client_ip(), request.user_agent.string)
                if user is not None
                else None
            )
            nonce = sessions.start(dbs, user, remember) if method is not None else None
        if user is None:
            return _sign_in_again()
        if method is not None:
            return _signed_in(user, nonce, remember)
        error = "That code is not valid (codes work once; recovery codes too)"
    return render_template("auth/verify.html", error=error), (401 if error else 200)


@bp.post("/logout")
@requires("app.use")
def logout():
    """Ends the session on the server, so a copy of the cookie stops working too."""
    with writing() as dbs:
        sessions.sign_out(dbs, acting(), g.get("session_id"))
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
