"""What the contact page and the inbox's side panel show about one contact: one read model for both, so
the panel and the page never disagree. No views and no Flask here, so the inbox may import it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from sigdesk.contacts.phones import pretty
from sigdesk.contacts.services import ContactData, get_contact
from sigdesk.timeline import visible_conversations
from sigdesk.custom_fields.services import definitions
from sigdesk.lifecycle import services as lifecycle
from sigdesk.models import User

CONSENT_WORDS = {"opted_in": "Opted in", "opted_out": "Opted out", "unknown": "Not asked"}


def record_context(session: Session, contact_id: int, user: User | None = None) -> dict[str, Any]:
    """The contact's record, owner, conversation, the tags, stages and custom fields to choose from.
    The conversation is the newest one `user` may open (none without a user: the link is left out rather
    than point at a conversation assigned to someone else)."""
    contact = get_contact(session, contact_id)
    record = ContactData.of(contact)
    seen = visible_conversations(session, user, contact_id) if user is not None else []
    conversation_id = seen[0] if seen else None
    owner = session.get(User, record.owner_id) if record.owner_id else None
    return {
        "contact": contact,
        "record": record,
        "phone": pretty(record.wa_id),
        "owner": owner,
        "conversation_id": conversation_id,
        "all_tags": lifecycle.list_tags(session),
        "stages": lifecycle.list_stages(session),
        "custom_fields": definitions(session),
        "consent_words": CONSENT_WORDS,
        "lead_score": record.lead_score,
        "lead_score_reasons": record.lead_score_reasons,
    }
