"""What the tags and stages tests share: people with each role, contacts, and the API as a token holder calls it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete

from sigdesk.actor import Actor
from sigdesk.auth import services as accounts
from sigdesk.lifecycle import commands
from sigdesk.models import Stage, Tag, User
from tests import factories


def actor(session, role: str = "admin", channel: str = "cli") -> Actor:
    return Actor(factories.user(session, role), channel)


def as_user(session, user: User, channel: str = "cli") -> Actor:
    return Actor(session.get(User, user.id), channel)


def clear_stages(database) -> None:
    """Start from no stages on every backend: the migration's defaults are gone on MariaDB after its first test."""
    with database.session() as session:
        session.execute(delete(Stage))
        session.commit()


def tag(session, name: str, color: int | None = None) -> Tag:
    return commands.create_tag(session, Actor.system("cli"), name, color)


def stage(session, name: str) -> Stage:
    return commands.create_stage(session, Actor.system("cli"), name)


@dataclass
class Api:
    """The REST API with a personal token of a user of `role`, through the app's test client."""

    client: object
    token: str
    user_id: int

    @classmethod
    def of(cls, app, role: str = "admin") -> "Api":
        with app.extensions["sigdesk"].database.session() as session:
            user = factories.user(session, role)
            token = accounts.create_api_token(session, user, "lifecycle")
            return cls(app.test_client(), token, user.id)

    def call(self, method: str, path: str, body: dict | None = None, **options):
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.client.open(f"/api/v1{path}", method=method, json=body, headers=headers, **options)
