"""The outbox consumer that reads customers' STOP and START keywords.

It runs on the worker after a message.received event, never in the webhook request, so ingest is not
slowed. Delivery is at least once: a message already recorded (consent_events.message_id is unique)
is skipped, so a batch offered again records nothing twice.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.consent.commands import record_consent
from sigdesk.consent.services import keyword_set, keyword_status
from sigdesk.db import write_lock
from sigdesk.errors import NotFound
from sigdesk.events.catalogue import MessageReceived
from sigdesk.events.outbox import Stored
from sigdesk.models import ConsentEvent, Direction, Message
from sigdesk.settings import services as settings

log = logging.getLogger(__name__)

# The message types whose text a customer types or taps (a template's quick-reply button).
KEYWORD_TYPES = ("text", "button")


class ConsentKeywords:
    """Opt a customer out (or back in) when their whole message is one of the configured keywords."""

    EVENTS = (MessageReceived.name,)

    def __init__(self, cipher) -> None:
        self.cipher = cipher

    def __call__(self, session: Session, events: list[Stored]) -> None:
        ids = [
            item.event.message_id
            for item in events
            if isinstance(item.event, MessageReceived) and item.event.type in (*KEYWORD_TYPES, None)
        ]
        if not ids:
            return
        stop = keyword_set(settings.get(session, self.cipher, "consent.stop_keywords"))
        start = keyword_set(settings.get(session, self.cipher, "consent.start_keywords"))
        rows = session.execute(
            select(Message.id, Message.contact_id, Message.conversation_id, Message.text, Message.timestamp)
            .outerjoin(ConsentEvent, ConsentEvent.message_id == Message.id)
            .where(
                Message.id.in_(ids),
                Message.direction == Direction.IN.value,
                Message.type.in_(KEYWORD_TYPES),
                ConsentEvent.id.is_(None),
            )
            .order_by(Message.id)
        ).all()
        said = [(row, status) for row in rows if (status := keyword_status(row.text, stop, start))]
        session.commit()  # ends the reading transaction; the writes below take the write lock
        if not said:
            return
        actor = Actor.system("worker")
        with write_lock(session):
            for row, status in said:
                try:
                    record_consent(
                        session,
                        actor,
                        row.contact_id,
                        status,
                        "whatsapp_keyword",
                        row.text.strip(),
                        at=row.timestamp,
                        message_id=row.id,
                        conversation_id=row.conversation_id,
                    )
                except NotFound:  # erased since: nobody left to record it for, and the batch must move on
                    log.info("consent keywords: message %s has no contact any more", row.id)
            session.commit()
        log.info("consent keywords: %s recorded", len(said))
