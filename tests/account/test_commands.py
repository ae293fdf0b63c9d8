"""A person's own account changes are commands too: the account page and `sigdesk token create` issue tokens
the same way, and password and two-factor changes are audited with their user.changed event."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sigdesk.models import ApiToken, User
from tests.commanding import audit, cli, events
from tests.conftest import PASSWORD

pytestmark = pytest.mark.database


def ids(app, email: str) -> tuple[int, list[int]]:
    with app.extensions["sigdesk"].database.session() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        tokens = session.scalars(select(ApiToken.id).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
        return user.id, list(tokens)


def test_the_account_page_and_the_cli_issue_tokens_the_same_way(app, auth, owner):
    page = auth.post("/account/tokens", {"name": "zapier"}, form_page="/account/")
    assert page.status_code == 200
    token = cli(app, "token", "create", "--email", owner.email, "--name", "backup script").output.strip()
    assert token.startswith("sdk_")
    owner_id, (first, second) = ids(app, owner.email)

    created = audit(app, "api_token.created")
    assert [(entry.target, entry.actor, entry.channel, entry.detail) for entry in created] == [
        ("zapier", owner.email, "web", {"api_token_id": first, "user": owner.email}),
        ("backup script", None, "cli", {"api_token_id": second, "user": owner.email}),
    ]
    assert events(app, "token.changed") == [
        {"token_id": first, "user_id": owner_id, "change": "created"},
        {"token_id": second, "user_id": owner_id, "change": "created"},
    ]
    assert token not in str(created)

    auth.post(f"/account/tokens/{second}/revoke", form_page="/account/")
    revoked = audit(app, "api_token.revoked")
    assert [(entry.target, entry.actor, entry.channel) for entry in revoked] == [("backup script", owner.email, "web")]
    assert events(app, "token.changed")[-1] == {"token_id": second, "user_id": owner_id, "change": "revoked"}


def test_password_and_two_factor_changes_are_audited_with_their_event(app, auth, owner):
    owner_id, _ = ids(app, owner.email)
    auth.enrol_totp(owner)
    changed = auth.post(
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "a brand new password",
            "new_password_confirm": "a brand new password",
        },
        form_page="/account/",
    )
    assert changed.status_code == 302
    for action in ("2fa.enabled", "password.changed"):
        [entry] = audit(app, action)
        assert (entry.target, entry.actor, entry.channel) == (owner.email, owner.email, "web")
    assert [event["change"] for event in events(app, "user.changed") if event["user_id"] == owner_id] == [
        "created",
        "two_factor",
        "password",
    ]
    assert "a brand new password" not in str(audit(app, "password.changed"))
