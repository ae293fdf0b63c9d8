"""What the custom field tests share: definitions built without a database, admins and agents, and the API
as a token holder calls it."""

from __future__ import annotations


from sigdesk.actor import Actor
from sigdesk.custom_fields import commands
from sigdesk.custom_fields.services import FieldDefinition
from sigdesk.models import ContactField, User
from tests import factories
from tests.lifecycle.helpers import Api  # noqa: F401  (the tests of this package import it from here)


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
