"""Building inbox data the way SigDesk stores it: webhooks through the real ingest, sends through queue()."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from sigdesk.inbound import services as inbound
from sigdesk.models import Contact, Conversation, Message, User
from tests import factories

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def deliver(database, body) -> str:
    """The careful path of the webhook: store and commit, then process in a second transaction."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with database.session() as session:
        delivery_id = inbound.store_delivery(session, raw, "sha256=test")
    with database.session() as session:
        return inbound.apply_delivery(session, delivery_id, raw)


def deliver_fixtures(database, *names: str) -> None:
    for name in names:
        deliver(database, (FIXTURES / f"{name}.json").read_bytes())


def customer_writes(
    database, wa_id: str, text: str = "Hello", at: datetime | None = None, name: str | None = None
) -> int:
    """A customer's text arrives; returns the conversation id."""
    wamid = f"wamid.T{wa_id}.{datetime.now().timestamp()}.{text[:8]}"
    deliver(
        database,
        factories.text_message(
            wa_id, text, wamid=wamid, at=at, name=name or f"Customer {wa_id[-4:]}", meta=factories.metadata()
        ),
    )
    with database.session() as session:
        contact = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        return session.scalar(select(Conversation.id).where(Conversation.contact_id == contact.id))


def user_id(database, email: str) -> int:
    with database.session() as session:
        return session.scalar(select(User.id).where(User.email == email))


def user(session, email: str) -> User:
    return session.scalar(select(User).where(User.email == email))


def assign(database, conversation_id: int, assignee_id: int | None) -> None:
    with database.session() as session:
        session.get(Conversation, conversation_id).assignee_id = assignee_id


def hours_ago(hours: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(hours=hours)


def messages_of(database, conversation_id: int) -> list[Message]:
    with database.session() as session:
        return list(
            session.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id))
        )
