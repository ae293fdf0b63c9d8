"""What the segments tests share: a small world of contacts whose every field is known, custom fields,
and the REST API as a token holder of some role calls it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import delete

from sigdesk.actor import Actor
from sigdesk.db import utcnow
from sigdesk.lifecycle import commands as lifecycle
from sigdesk.models import ContactField, ContactFieldValue, ContactStage, Stage
from tests import factories
from tests.lifecycle.helpers import Api  # noqa: F401  (the tests of this package import it from here)


def field(session, key: str, kind: str, options: list[str] | None = None) -> ContactField:
    row = ContactField(key=key, label=key.title(), kind=kind, options=json.dumps(options) if options else None)
    session.add(row)
    session.flush()
    return row


def value(session, contact_id: int, definition: ContactField, **stored) -> None:
    session.add(ContactFieldValue(contact_id=contact_id, field_id=definition.id, **stored))
    session.flush()


@dataclass
class World:
    ids: dict[str, int]
    owner_id: int


def build_world(database) -> World:
    """Alice, Bob and Cleo: Alice and Bob differ on every field; Cleo has nothing but her number."""
    now = utcnow()
    system = Actor.system("cli")
    with database.session() as session:
        session.execute(delete(ContactStage))
        session.execute(delete(Stage))
        owner = factories.user(session, "agent")
        alice = factories.contact(
            session,
            "4917011111111",
            display_name="Alice Smith",
            email="alice@acme.example",
            company="Acme",
            city="Berlin",
            country="DE",
            language="de",
            owner_id=owner.id,
            created_at=now - timedelta(days=10),
            updated_at=now - timedelta(days=2),
            last_inbound_at=now - timedelta(days=1),
            marketing_consent="opted_in",
        )
        bob = factories.contact(
            session,
            "33612345678",
            name="Bob Jones",
            company="Beta Ltd",
            city="Paris",
            country="FR",
            created_at=now - timedelta(days=5),
            updated_at=now - timedelta(days=5),
            last_outbound_at=now - timedelta(days=40),
            marketing_consent="opted_out",
        )
        cleo = factories.contact(session, "15550001234", created_at=now, updated_at=now)
        vip, cold = lifecycle.create_tag(session, system, "VIP"), lifecycle.create_tag(session, system, "Cold")
        lead, customer = (
            lifecycle.create_stage(session, system, "Lead"),
            lifecycle.create_stage(session, system, "Customer"),
        )
        lifecycle.tag_contact(session, system, alice.id, vip.id)
        lifecycle.tag_contact(session, system, bob.id, cold.id)
        lifecycle.set_stage(session, system, alice.id, lead.id)
        lifecycle.set_stage(session, system, bob.id, customer.id)
        talk = factories.conversation(session, bob)
        factories.label(session, "Urgent", on=[talk])
        budget = field(session, "budget", "number")
        plan = field(session, "plan", "choice", ["basic", "pro"])
        interests = field(session, "interests", "choices", ["golf", "tennis", "café"])
        birthday = field(session, "birthday", "date")
        newsletter = field(session, "newsletter", "boolean")
        notes = field(session, "hobby", "text")
        value(session, alice.id, budget, number_value=500.0)
        value(session, bob.id, budget, number_value=50.0)
        value(session, alice.id, plan, text_value="pro")
        value(session, bob.id, plan, text_value="basic")
        value(session, alice.id, interests, text_value=json.dumps(["golf", "café"], ensure_ascii=False))
        value(session, bob.id, interests, text_value=json.dumps(["tennis"], ensure_ascii=False))
        value(session, alice.id, birthday, date_value=date(1990, 5, 1))
        value(session, bob.id, birthday, date_value=date(2001, 12, 24))
        value(session, alice.id, newsletter, number_value=1.0)
        value(session, bob.id, newsletter, number_value=0.0)
        value(session, alice.id, notes, text_value="Sailing 100%")
        session.commit()
        return World({"alice": alice.id, "bob": bob.id, "cleo": cleo.id}, owner.id)
