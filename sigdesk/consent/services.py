"""Reading marketing consent: the current state of many contacts at once, one contact's history, and the
keyword rule that turns a customer's whole message into an opt-out or opt-in."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.consent.commands import UNKNOWN
from sigdesk.errors import NotFound
from sigdesk.models import ConsentEvent, Contact
from sigdesk.paging import Cursor, Page, newest_first, page

# Longer messages are sentences, never keywords; reading no further keeps the check cheap.
MAX_KEYWORD = 64
IN_CHUNKS = 500  # ids per IN (...) list


class ConsentEventData(BaseModel):
    """A consent event as the API and the contact's history show it."""

    id: int
    contact_id: int
    status: str
    source: str
    evidence: str | None
    message_id: int | None
    actor_id: int | None
    channel: str | None
    at: datetime
    created_at: datetime

    @classmethod
    def of(cls, event: ConsentEvent) -> "ConsentEventData":
        return cls(**{name: getattr(event, name) for name in cls.model_fields})


def current_consent(session: Session, contact_ids: Iterable[int]) -> dict[int, str]:
    """Each contact's state (opted_in, opted_out or unknown), read from the column record_consent keeps;
    ids of contacts that do not exist are left out."""
    ids = sorted(set(contact_ids))
    found: dict[int, str] = {}
    for start in range(0, len(ids), IN_CHUNKS):
        chunk = ids[start : start + IN_CHUNKS]
        rows = session.execute(select(Contact.id, Contact.marketing_consent).where(Contact.id.in_(chunk)))
        found.update({contact_id: state or UNKNOWN for contact_id, state in rows})
    return found


def history(session: Session, contact_id: int, cursor: Cursor | None, limit: int) -> Page[ConsentEvent]:
    """The contact's consent events, newest word first (by when it was said), keyset-paged."""
    if session.scalar(select(Contact.id).where(Contact.id == contact_id)) is None:
        raise NotFound(f"There is no contact {contact_id}", field="contact_id")
    query = newest_first(
        select(ConsentEvent).where(ConsentEvent.contact_id == contact_id),
        ConsentEvent.at,
        ConsentEvent.id,
        cursor,
        limit,
    )
    return page(list(session.scalars(query)), limit, lambda event: Cursor(event.at, event.id))


def fold(text: str) -> str:
    """A keyword as compared: accents dropped, case folded, spaces collapsed, surrounding punctuation and
    symbols trimmed ("Stop!" and " arrêt " match STOP and ARRET)."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    words = " ".join(bare.split())
    start, end = 0, len(words)
    while start < end and unicodedata.category(words[start])[0] in "PSZ":
        start += 1
    while end > start and unicodedata.category(words[end - 1])[0] in "PSZ":
        end -= 1
    return words[start:end]


def keyword_status(text: str | None, stop: frozenset[str], start: frozenset[str]) -> str | None:
    """opted_out when the whole message is a stop keyword, opted_in when it is a start keyword, else None.
    Only the whole message counts: "please don't stop" is a sentence, not a STOP. `stop` and `start`
    hold folded keywords (keyword_set)."""
    if not text or len(text) > MAX_KEYWORD * 4:
        return None
    folded = fold(text)
    if not folded or len(folded) > MAX_KEYWORD:
        return None
    if folded in stop:
        return "opted_out"
    if folded in start:
        return "opted_in"
    return None


def keyword_set(listed: str | None) -> frozenset[str]:
    """The folded keywords of a setting's comma-separated list."""
    return frozenset(filter(None, (fold(part) for part in (listed or "").replace("\n", ",").split(","))))
