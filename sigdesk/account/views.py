"""A user's own account: two-factor enrolment, recovery codes, password, API tokens."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import logout_user
from markupsafe import Markup

from sigdesk.auth import services as accounts, sessions
from sigdesk.web import acting, actor, app_config, cipher, db_session, requires, shows_secret, writing

bp = Blueprint("account", __name__, url_prefix="/account")


def qr_svg(data: str) -> Markup:
    """Rendered on the server so the secret never leaves the machine for a QR service."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    return Markup(svg[svg.index("<svg") :])


@bp.get("/")
@requires("account.manage")
def index():
    user = actor()
    return render_template(
        "account/index.html",
        user=user,
        remaining_codes=accounts.remaining_recovery_codes(user),
        tokens=[token for token in user.api_tokens if token.revoked_at is None],
        open_sessions=len(sessions.list_open(db_session(), user)),
    )


@bp.get("/two-factor")
@requires("account.manage")
@shows_secret
def two_factor():
    user = actor()
    if user.totp_enabled:
        return redirect(url_for("account.index"))
    try:
        with writing() as dbs:
            secret = accounts.begin_totp_enrolment(dbs, cipher(), user)
    except accounts.AccountError:  # turned on in another window meanwhile
        return redirect(url_for("account.index"))
    uri = accounts.provisioning_uri(user, secret)
    return render_template("account/two_factor.html", secret=secret, qr=qr_svg(uri), error=None)


@bp.post("/two-factor")
@requires("account.manage")
@shows_secret
def two_factor_confirm():
    user = actor()
    try:
        with writing() as dbs:
            codes = accounts.enable_two_factor(dbs, acting(), cipher(), user, request.form.get("code", ""))
    except accounts.AccountError as exc:
        secret = accounts.pending_totp_secret(cipher(), user)
        if secret is None:
            return redirect(url_for("account.two_factor"))
        uri = accounts.provisioning_uri(user, secret)
        return render_template("account/two_factor.html", secret=secret, qr=qr_svg(uri), error=str(exc)), 400
    return render_template("account/recovery_codes.html", codes=codes)


@bp.post("/recovery-codes")
@requires("account.manage")
@shows_secret
def new_recovery_codes():
    user = actor()
    enabled, checked, codes = user.totp_enabled, user.password_hash, None
    if enabled and accounts.check_password(request.form.get("password", ""), checked):
        with writing() as dbs:
            enabled = user.totp_enabled  # it, or the password, may have changed while bcrypt ran
            if enabled and user.password_hash == checked:
                codes = accounts.new_recovery_codes(dbs, acting(), user)
    if codes is not None:
        return render_template("account/recovery_codes.html", codes=codes)
    if not enabled:
        flash("Turn on two-factor authentication first.", "warning")
        return redirect(url_for("account.index"))
    flash("The password is not correct.", "error")
    return redirect(url_for("account.index")), 303


@bp.post("/password")
@requires("account.manage")
def change_password():
    user = actor()
    form = request.form
    if form.get("new_password") != form.get("new_password_confirm"):
        flash("The two new passwords do not match.", "error")
        return redirect(url_for("account.index"))
    try:
        change = accounts.prepare_password_change(
            user, form.get("current_password", ""), form.get("new_password", ""), app_config().bcrypt_rounds
        )
        with writing() as dbs:
            revoked = accounts.set_password(dbs, acting(), user, change)
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("account.index"))
    tokens = (
        f" Your {revoked} API token{'s were' if revoked > 1 else ' was'} revoked too: create new ones for your integrations."
        if revoked
        else ""
    )
    flash(f"Password changed. You were signed out everywhere; please sign in again.{tokens}")
    return redirect(url_for("auth.login"))


@bp.post("/sign-out-everywhere")
@requires("account.manage")
def sign_out_everywhere():
    """Ends every session of the user, in every browser (this one too); API tokens stay."""
    user = actor()
    with writing() as dbs:
        ended = sessions.sign_out_everywhere(dbs, acting(), user)
    logout_user()
    session.clear()
    flash(f"Signed out everywhere ({ended} session{'s' if ended != 1 else ''} ended). Please sign in again.")
    return redirect(url_for("auth.login"))


@bp.post("/tokens")
@requires("api.use")
@shows_secret
def create_token():
    user = actor()
    name = request.form.get("name", "").strip() or "API token"
    with writing() as dbs:
        token = accounts.issue_api_token(dbs, acting(), user, name)
    return render_template("account/token_created.html", token=token, name=name)


@bp.post("/tokens/<int:token_id>/revoke")
@requires("api.use")
def revoke_token(token_id: int):
    user = actor()
    with writing() as dbs:
        revoked = next((token for token in user.api_tokens if token.id == token_id and token.revoked_at is None), None)
        if revoked is not None:
            accounts.revoke_token(dbs, acting(), revoked)
    flash("Token revoked." if revoked is not None else "No such token.", "success" if revoked is not None else "error")
    return redirect(url_for("account.index"))
