"""What the broadcast tests of the domain, the API and the CLI share: numbers outside +1 (marketing templates
never go to US numbers), contacts with consent, and a broadcast's input."""

from __future__ import annotations

import itertools
from typing import Any

from sigdesk.actor import Actor
from sigdesk.broadcasts.schemas import BroadcastIn
from sigdesk.models import Contact
from tests import factories

_numbers = itertools.count(1)


def german() -> str:
    """A valid German mobile number as Meta writes it (never +1)."""
    return f"4917012{next(_numbers):05d}"


def customer(session, consent: str = "opted_in", wa_id: str | None = None, **fields: Any) -> Contact:
    return factories.contact(session, wa_id=wa_id or german(), marketing_consent=consent, **fields)


def admin(session) -> Actor:
    return Actor(factories.user(session, "admin", name="Ada Admin"), "web")


def data(template, audience: dict[str, Any], **fields: Any) -> BroadcastIn:
    variables = fields.pop("variables", {"1": "{contact.name|there}"})
    return BroadcastIn.model_validate(
        {
            "name": fields.pop("name", "December batch"),
            "template": {"name": template.name, "language": template.language, "variables": variables},
            "audience": audience,
            **fields,
        }
    )


def hello(session, category: str = "MARKETING", status: str = "APPROVED", name: str | None = None):
    """A template with one body variable."""
    return factories.template(
        session, name=name or f"hello_{next(_numbers)}", category=category, status=status, body="Hello {{1}}!"
    )
