"""Team changes are commands: the team page, first-run setup and `sigdesk user create` leave the same
audit entry and user.changed event, differing only in who acted and by which way in."""

from __future__ import annotations

import pytest

from sigdesk.models import User
from tests.commanding import audit, cli, events
from tests.conftest import PASSWORD

pytestmark = pytest.mark.database


def user_id(app, email: str) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.query(User).filter_by(email=email).one().id


def test_the_team_page_and_the_cli_add_a_member_the_same_way(app, auth, owner):
    page = auth.post(
        "/admin/team",
        {"email": "nina@example.com", "name": "Nina", "role": "agent", "password": PASSWORD},
        form_page="/admin/team",
    )
    assert page.status_code == 302
    cli(
        app,
        "user",
        "create",
        "--email",
        "carl@example.com",
        "--name",
        "Carl",
        "--role",
        "admin",
        "--password-stdin",
        input=PASSWORD + "\n",
    )

    added = audit(app, "team.user_added")
    assert [(entry.target, entry.actor, entry.channel, entry.detail) for entry in added] == [
        (owner.email, None, "web", {"role": "owner"}),  # first-run setup: nobody was signed in yet
        ("nina@example.com", owner.email, "web", {"role": "agent"}),
        ("carl@example.com", None, "cli", {"role": "admin"}),
    ]
    assert events(app, "user.changed") == [
        {"user_id": user_id(app, email), "change": "created"}
        for email in (owner.email, "nina@example.com", "carl@example.com")
    ]


def test_role_changes_deactivation_and_a_two_factor_reset_are_audited_with_their_event(app, auth, owner):
    member = auth.create_user("agent", email="gina@example.com")
    member_id = user_id(app, member.email)
    auth.post(f"/admin/team/{member_id}/role", {"role": "admin"}, form_page="/admin/team")
    auth.post(f"/admin/team/{member_id}/deactivate", form_page="/admin/team")
    auth.post(f"/admin/team/{member_id}/activate", form_page="/admin/team")
    auth.post(f"/admin/team/{member_id}/reset-2fa", form_page="/admin/team")

    role = audit(app, "team.role_changed")[0]
    assert (role.target, role.actor, role.channel, role.detail) == (
        member.email,
        owner.email,
        "web",
        {"from": "agent", "to": "admin"},
    )
    for action in ("team.user_deactivated", "team.user_activated", "team.2fa_reset"):
        assert [(entry.target, entry.actor) for entry in audit(app, action)] == [(member.email, owner.email)]
    changes = [event["change"] for event in events(app, "user.changed") if event["user_id"] == member_id]
    assert changes == ["role", "deactivated", "activated", "two_factor"]


def test_a_refused_change_records_nothing(app, auth, owner):
    me = user_id(app, owner.email)
    before = events(app, "user.changed")
    auth.post(f"/admin/team/{me}/deactivate", form_page="/admin/team")
    assert audit(app, "team.user_deactivated") == [] and events(app, "user.changed") == before
