"""Deactivating a user or changing their password revokes their API tokens, whichever way it is done."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sigdesk.auth.services import find_user
from sigdesk.models import ApiToken, User
from tests.commanding import audit, cli, events
from tests.conftest import PASSWORD
from tests.factories import api_token

pytestmark = pytest.mark.database

NEW_PASSWORD = "a different long passphrase 42"


def tokens_for(app, email: str, count: int = 2) -> list[str]:
    with app.extensions["sigdesk"].database.session() as session:
        user = find_user(session, email)
        return [api_token(session, user, f"integration {n}") for n in range(count)]


def works(app, token: str) -> bool:
    response = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code == 200


def user_id(app, email: str) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(User.id).where(User.email == email))


def test_deactivating_a_user_on_the_team_page_revokes_their_tokens(app, auth, owner):
    member = auth.create_user("admin")
    tokens = tokens_for(app, member.email)
    assert all(works(app, token) for token in tokens)
    said = auth.post(
        f"/admin/team/{user_id(app, member.email)}/deactivate", form_page="/admin/team", follow_redirects=True
    )
    assert "their API tokens are revoked" in said.get_data(as_text=True)
    auth.post(f"/admin/team/{user_id(app, member.email)}/activate", form_page="/admin/team")
    assert not any(works(app, token) for token in tokens)  # reactivation does not bring them back
    assert [entry.detail["reason"] for entry in audit(app, "api_token.revoked")] == ["deactivated"] * 2


def test_deactivating_a_user_from_the_cli_revokes_their_tokens(app, auth, owner):
    member = auth.create_user("agent")
    tokens = tokens_for(app, member.email)
    result = cli(app, "user", "deactivate", "--email", member.email)
    assert "2 API token(s) revoked" in result.output
    assert not any(works(app, token) for token in tokens)
    assert [entry.channel for entry in audit(app, "api_token.revoked")] == ["cli"] * 2


def test_changing_the_password_on_the_account_page_revokes_tokens_and_says_so(app, auth, client, owner):
    tokens = tokens_for(app, owner.email)
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    response = auth.post("/account/password", form, form_page="/account/")
    assert response.status_code == 302
    page = client.get("/login").get_data(as_text=True)
    assert "Your 2 API tokens were revoked" in page
    assert not any(works(app, token) for token in tokens)
    assert [entry.detail["reason"] for entry in audit(app, "api_token.revoked")] == ["password_changed"] * 2


def test_setting_a_password_from_the_cli_revokes_tokens_and_ends_sessions(app, auth, client, owner):
    tokens = tokens_for(app, owner.email, count=1)
    result = cli(app, "user", "password", "--email", owner.email, "--password-stdin", input=NEW_PASSWORD + "\n")
    assert "1 API token(s) revoked" in result.output
    assert not works(app, tokens[0])
    assert client.get("/account/").status_code == 302
    owner.password = NEW_PASSWORD
    assert auth.login(owner).status_code == 302


def test_the_account_page_warns_that_a_password_change_revokes_tokens(client, owner):
    assert "revokes your API tokens" in client.get("/account/").get_data(as_text=True)


def test_a_token_revoked_by_hand_or_by_a_password_change_is_audited_and_announced_alike(app, auth, owner):
    tokens_for(app, owner.email)
    owner_id = user_id(app, owner.email)
    with app.extensions["sigdesk"].database.session() as session:
        first, second = session.scalars(select(ApiToken.id).where(ApiToken.user_id == owner_id).order_by(ApiToken.id))
    auth.post(f"/account/tokens/{first}/revoke", form_page="/account/")
    cli(app, "user", "password", "--email", owner.email, "--password-stdin", input=NEW_PASSWORD + "\n")

    assert [(entry.target, entry.detail) for entry in audit(app, "api_token.revoked")] == [
        ("integration 0", {"api_token_id": first, "user": owner.email, "reason": "requested"}),
        ("integration 1", {"api_token_id": second, "user": owner.email, "reason": "password_changed"}),
    ]
    assert [event for event in events(app, "token.changed") if event["change"] == "revoked"] == [
        {"token_id": first, "user_id": owner_id, "change": "revoked"},
        {"token_id": second, "user_id": owner_id, "change": "revoked"},
    ]
