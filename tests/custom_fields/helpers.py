"""What the custom field tests share: definitions built without a database, admins and agents, and the API
as a token holder calls it."""

from __future__ import annotations

from dataclasses import dataclass

from sigdesk.actor import Actor
from sigdesk.auth import services as accounts
from sigdesk.custom_fields import commands
from sigdesk.custom_fields.services import FieldDefinition
from sigdesk.models import ContactField, User
from tests import factories


def definition(kind: str, **parts) -> FieldDefinition:
    """A field's definition as parse and to_json read it, without a database."""
    values = {
        "id": 1,
        "key": parts.pop("key", kind),
        "label": parts.pop("label", kind.title()),
        "kind": kind,
        "required": False,
        "pattern": None,
        "options": [],
        "currency": "EUR" if kind == "currency" else None,
        "position": 1,
    }
    values.update(parts)
    return FieldDefinition(**values)


def actor(session, role: str = "admin", channel: str = "cli") -> Actor:
    return Actor(factories.user(session, role), channel)


def as_user(session, user: User, channel: str = "cli") -> Actor:
    return Actor(session.get(User, user.id), channel)


def field(session, label: str, kind: str, **parts) -> ContactField:
    return commands.define_field(session, Actor.system("cli"), label, kind, **parts)


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
            token = accounts.create_api_token(session, user, "fields")
            return cls(app.test_client(), token, user.id)

    def call(self, method: str, path: str, body: dict | None = None, **options):
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.client.open(f"/api/v1{path}", method=method, json=body, headers=headers, **options)
