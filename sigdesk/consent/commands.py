"""The one command that records marketing consent; every way in (agents, the API, STOP keywords, Meta's
user_preferences webhook and error 131050) calls it, so each word leaves the same trail.

The rule is that the newest word wins, whichever order the words arrive in: a word said (`at`) no later
than the one on record changes nothing and is neither kept nor announced, so a redelivered or late
webhook cannot undo a later stop. The contact's current state (`contacts.marketing_consent`, and the
older `opted_out_marketing` flag that sending reads) moves in the same statement, so it cannot drift
from the history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.db import utcnow
from sigdesk.errors import NotFound, UserError
from sigdesk.events.catalogue import ConsentRecorded, ContactChanged, NoteAdded
from sigdesk.events.outbox import record as record_event
from sigdesk.models import ConsentEvent, Contact, Conversation, Note

OPTED_IN = "opted_in"
OPTED_OUT = "opted_out"
UNKNOWN = "unknown"
STATUSES = (OPTED_IN, OPTED_OUT)
# Where a word came from. The last three are SigDesk's own: Meta's preference webhook, the rows kept
# before this history existed, and Meta refusing a marketing send because the customer stopped them.
SOURCES = ("whatsapp_keyword", "form", "import", "agent", "api", "meta_error_131050", "meta_preferences", "legacy")
# What a person or an integration may claim through the API (the others are SigDesk's to observe).
CLAIMABLE_SOURCES = ("form", "import", "agent", "api")
MAX_EVIDENCE = 1000

NOTE_TEXT = {
    OPTED_OUT: "{who} opted out of marketing messages ({source}{evidence}).",
    OPTED_IN: "{who} opted in to marketing messages ({source}{evidence}).",
}


def _checked(status: Any, source: Any, evidence: Any) -> str | None:
    if status not in STATUSES:
        raise UserError(f"'status' must be one of {', '.join(STATUSES)}", field="status")
    if source not in SOURCES:
        raise UserError(f"'source' must be one of {', '.join(SOURCES)}", field="source")
    if evidence is None:
        return None
    if not isinstance(evidence, str):
        raise UserError("'evidence' must be text", field="evidence")
    cleaned = evidence.strip()
    if len(cleaned) > MAX_EVIDENCE:
        raise UserError(f"'evidence' is limited to {MAX_EVIDENCE} characters", field="evidence")
    return cleaned or None


def record_consent(
    session: Session,
    actor: Actor,
    contact_id: int,
    status: str,
    source: str,
    evidence: str | None = None,
    *,
    at: datetime | None = None,
    message_id: int | None = None,
    conversation_id: int | None = None,
) -> ConsentEvent | None:
    """Record that the customer opted in or out, said at `at` (now when not given), as `evidence` shows.

    Returns the stored event, or None when nothing was recorded: the word is not newer than the one on
    record, or the message that carried it was recorded already (a consumer offered the same event
    twice). With `conversation_id`, the conversation gets an activity note saying so.
    """
    evidence = _checked(status, source, evidence)
    current = session.execute(select(Contact.marketing_consent).where(Contact.id == contact_id)).first()
    if current is None:
        raise NotFound(f"There is no contact {contact_id}", field="contact_id")
    if message_id is not None and session.scalar(select(ConsentEvent.id).where(ConsentEvent.message_id == message_id)):
        return None
    c = Contact.__table__.c
    newer = c.id == contact_id
    if at is None:  # said now: newer than anything on record, even a webhook stamped by a clock ahead of ours
        at = utcnow()
    else:
        newer = newer & or_(c.opted_out_changed_at.is_(None), c.opted_out_changed_at < at)
    changed = session.execute(
        update(Contact.__table__)
        .where(newer)
        .values(marketing_consent=status, opted_out_marketing=status == OPTED_OUT, opted_out_changed_at=at)
    ).rowcount
    if not changed:
        return None
    event = ConsentEvent(
        contact_id=contact_id,
        status=status,
        source=source,
        evidence=evidence,
        message_id=message_id,
        actor_id=actor.user_id,
        token_id=actor.token_id,
        channel=actor.channel,
        at=at,
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    previous = current[0]
    record_by(
        session,
        actor,
        "contact.marketing_opt_out" if status == OPTED_OUT else "contact.marketing_opt_in",
        f"contact {contact_id}",
        {"source": source, "consent_event_id": event.id},
    )
    if conversation_id is not None:
        _note(session, actor, conversation_id, event)
    record_event(session, ConsentRecorded(contact_id, event.id, status, source, previous))
    if previous != status:
        record_event(session, ContactChanged(contact_id, ("marketing_consent", "opted_out_marketing")))
    return event


def _note(session: Session, actor: Actor, conversation_id: int, event: ConsentEvent) -> None:
    """An activity line in the conversation, so whoever reads the thread sees why marketing stopped."""
    assignee = session.scalar(select(Conversation.assignee_id).where(Conversation.id == conversation_id))
    who = actor.name if actor.user is not None else "The customer"
    evidence = f": “{event.evidence[:80]}”" if event.evidence else ""
    body = NOTE_TEXT[event.status].format(who=who, source=event.source.replace("_", " "), evidence=evidence)
    note = Note(conversation_id=conversation_id, author_id=actor.user_id, body=body, kind="activity")
    note.created_at = utcnow()
    session.add(note)
    session.flush()
    record_event(session, NoteAdded(conversation_id, assignee, note.id, "activity"))
