"""Browser sessions live on the server: signing out, here or everywhere, ends every copy of the cookie."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sigdesk.auth import sessions
from sigdesk.db import utcnow
from sigdesk.models import User, UserSession
from tests.commanding import audit, events
from tests.conftest import PASSWORD, Auth

COOKIE = "sigdesk_session"


def copy_cookie(app, client):
    """Another browser (an attacker's) holding a copy of the client's session cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def test_a_copied_cookie_is_refused_after_sign_out(app, auth, client, owner):
    thief = copy_cookie(app, client)
    assert thief.get("/account/").status_code == 200
    auth.logout()
    assert thief.get("/account/").status_code == 302
    assert thief.get("/events").status_code == 302


def test_sign_out_everywhere_ends_every_browser_and_copied_cookie(app, auth, client, owner):
    laptop = Auth(app, app.test_client())
    laptop.login(owner)
    thief = copy_cookie(app, laptop.client)
    assert "Sign out everywhere" in client.get("/account/").get_data(as_text=True)
    response = auth.post("/account/sign-out-everywhere", form_page="/account/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    for browser in (client, laptop.client, thief):
        assert browser.get("/account/").status_code == 302
    assert [entry.detail for entry in audit(app, "session.signed_out_everywhere")] == [{"sessions": 2}]
    assert {"user_id": user_id(app, owner.email), "change": "signed_out"} in events(app, "user.changed")
    assert auth.login(owner).status_code == 302
    assert client.get("/account/").status_code == 200


def user_id(app, email: str) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(User.id).where(User.email == email))


def test_an_ordinary_session_ends_after_12_idle_hours_and_after_24_hours_at_most(app, auth, client, owner):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        row = session.scalars(select(UserSession)).one()
        assert not row.remember
        assert row.expires_at - row.created_at == timedelta(hours=24)
        row.last_seen_at = utcnow() - timedelta(hours=12, minutes=1)
    assert client.get("/account/").status_code == 302

    auth.login(owner)
    with database.session() as session:
        row = session.scalars(select(UserSession).where(UserSession.revoked_at.is_(None))).all()[-1]
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert client.get("/account/").status_code == 302


def test_keep_me_signed_in_lasts_14_days_with_7_idle_days(app, auth, client, owner):
    auth.logout()
    response = auth.post("/login", {"email": owner.email, "password": PASSWORD, "remember": "on"})
    assert response.status_code == 302
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith(COOKIE))
    assert "Expires=" in cookie  # outlives the browser; an ordinary sign-in's cookie does not
    with app.extensions["sigdesk"].database.session() as session:
        row = session.scalar(select(UserSession).where(UserSession.remember.is_(True)))
        assert row.expires_at - row.created_at == timedelta(days=14)
        row.last_seen_at = utcnow() - timedelta(days=6)
    assert client.get("/account/").status_code == 200


def test_an_ordinary_sign_in_cookie_ends_with_the_browser(auth, client, owner):
    auth.logout()
    response = auth.post("/login", {"email": owner.email, "password": PASSWORD})
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith(COOKIE))
    assert "Expires=" not in cookie


def test_two_factor_sign_in_opens_a_server_side_session_too(app, auth, client, owner):
    auth.enrol_totp(owner)
    auth.logout()
    auth.login(owner)
    thief = copy_cookie(app, client)
    assert thief.get("/account/").status_code == 200
    auth.logout()
    assert thief.get("/account/").status_code == 302


def test_a_session_notes_its_last_use_at_most_once_a_minute(app, client, owner):
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        row = session.scalars(select(UserSession)).one()
        row.last_seen_at = before = utcnow() - timedelta(minutes=5)
    client.get("/account/")
    with database.session() as session:
        touched = session.scalars(select(UserSession)).one().last_seen_at
    assert touched > before + timedelta(minutes=4)
    client.get("/account/")
    with database.session() as session:
        assert session.scalars(select(UserSession)).one().last_seen_at == touched


@pytest.mark.database
def test_ended_sessions_are_cleared_at_the_next_sign_in(app, auth, owner):
    for _ in range(3):
        auth.logout()
        auth.login(owner)
    with app.extensions["sigdesk"].database.session() as session:
        rows = session.scalars(select(UserSession)).all()
        assert len(rows) == 1 and rows[0].revoked_at is None
        user = session.get(User, rows[0].user_id)
        assert len(sessions.list_open(session, user)) == 1


def test_a_password_change_ends_every_session_and_the_account_page_counts_only_live_ones(app, auth, client, owner):
    laptop = Auth(app, app.test_client())
    laptop.login(owner)
    assert "signed in in 2 browsers" in client.get("/account/").get_data(as_text=True)
    new = "another long passphrase 77"
    form = {"current_password": PASSWORD, "new_password": new, "new_password_confirm": new}
    auth.post("/account/password", form, form_page="/account/")
    assert laptop.client.get("/account/").status_code == 302
    owner.password = new
    auth.login(owner)
    assert "signed in in 1 browser." in client.get("/account/").get_data(as_text=True)


def test_signing_out_is_a_command_that_leaves_an_audit_entry_once(app, auth, client, owner):
    thief = copy_cookie(app, client)
    auth.logout()
    assert [(entry.target, entry.actor, entry.channel) for entry in audit(app, "session.signed_out")] == [
        (owner.email, owner.email, "web")
    ]
    with app.extensions["sigdesk"].database.session() as session:
        from sigdesk.actor import Actor

        row = session.scalars(select(UserSession)).one()
        assert not sessions.sign_out(session, Actor.system("cli"), row.id)  # already ended: nothing recorded
    assert len(audit(app, "session.signed_out")) == 1
    assert thief.get("/account/").status_code == 302
