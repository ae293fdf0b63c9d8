"""Reading for merges: the duplicates SigDesk suggests, the preview of a merge, and what past merges did.

Suggestions are found in one pass over the contacts, so they cost the same whatever the data looks like:

- the same email (stored lower case): one GROUP BY on the indexed column;
- the same phone once normalised: wa_ids are unique as stored, but Meta and people write some numbers
  differently (a "+" or spaces from an old import, a national number with a leading 0, Brazil's mobile
  numbers with and without the ninth digit, Mexico's "521" and Argentina's "549" mobile prefixes); each
  number is reduced to a key (phone_key) and contacts with the same key pair up;
- a similar name: the same words whatever their case, accents, spacing and order ("José  García" and
  "garcia jose"), from the name the business gave or the WhatsApp profile name (name_key).

The phone and name keys are computed in Python over (id, wa_id, display_name, profile_name) read in
batches of SCAN_BATCH by primary key: about a second for 100,000 contacts on a small machine (SQLite),
with memory for the keys only. The pairs found are kept while the contacts look unchanged (_fingerprint:
counts and a checksum of the numbers, names and emails, a pass in SQL), so the next pages answer quickly
and a WhatsApp profile name change shows on the next page asked. A key shared by more than MAX_GROUP contacts is too common
to say anything ("Maria", a shop's own number) and is not suggested; that bounds the pairs to MAX_GROUP²
per key. Past MAX_CONTACTS contacts, the scan stops there and the answer says the list is partial.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigdesk.contacts.fields import COLUMN_OF, default_country
from sigdesk.contacts.phones import normalise, pretty
from sigdesk.contacts.services import name_of
from sigdesk.errors import NotFound, Refused, UserError
from sigdesk.models import (
    ConsentEvent,
    Contact,
    ContactField,
    ContactFieldValue,
    ContactMerge,
    ContactStage,
    ContactTag,
    Conversation,
    DuplicateDismissal,
    Message,
    Note,
    Stage,
    StageChange,
    User,
)
from sigdesk.paging import MAX_CURSOR

SCAN_BATCH = 5_000
MAX_GROUP = 10
MAX_CONTACTS = 500_000
MAX_MERGES_SHOWN = 200
CACHE_SECONDS = 120

Pick = Literal["keep", "merge"]
REASONS = ("email", "phone", "name")
# The standard fields a merge lets people pick, by API name (sigdesk.contacts.fields), in form order.
STANDARD = ("name", "email", "company", "city", "country", "language", "notes", "owner_id")
LABELS = {
    "name": "Name",
    "email": "Email",
    "company": "Company",
    "city": "City",
    "country": "Country",
    "language": "Language",
    "notes": "Notes",
    "owner_id": "Owner",
    "stage": "Lifecycle stage",
}
CUSTOM = "custom."  # a custom field's pick is named "custom.<its key>"


# --- keys ----------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_NON_DIGIT = re.compile(r"\D")
# Combining marks (accents) left by NFKD in Latin, Greek, Cyrillic and the extended blocks.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def name_key(name: str | None) -> str | None:
    """A name as compared: accents dropped, case folded, punctuation and spacing ignored, words sorted."""
    if not name:
        return None
    if name.isascii():  # most names: no accents to drop, and lower() is casefold() for ASCII
        words = _WORD.findall(name.lower())
    else:
        bare = _COMBINING.sub("", unicodedata.normalize("NFKD", name)).casefold()
        words = _WORD.findall(bare)
    if len(words) > 1:
        words.sort()
    return " ".join(words) or None


def phone_key(wa_id: str | None, country: str | None = None) -> str | None:
    """A number as compared: international digits, with the mobile prefixes some countries write two ways
    reduced to one (Brazil's ninth digit, Mexico's 521, Argentina's 549). A national number (leading 0)
    is read in the default country; one that cannot be read keeps its digits."""
    if not wa_id:
        return None
    text = wa_id.strip()
    if text.isdigit() and text[0] != "0":  # as Meta writes them: most numbers
        digits = text
    else:
        digits = _NON_DIGIT.sub("", text)
    if text.startswith("00"):
        digits = digits[2:]
    elif text.startswith("0") and country:
        try:
            digits = normalise(text, country)
        except UserError:
            pass
    if not digits:
        return None
    if digits.startswith("55") and len(digits) == 13 and digits[4] == "9" and digits[5] in "6789":
        digits = digits[:4] + digits[5:]
    elif digits.startswith("521") and len(digits) == 13:
        digits = "52" + digits[3:]
    elif digits.startswith("549") and len(digits) == 13:
        digits = "54" + digits[3:]
    return digits


# --- suggestions ---------------------------------------------------------------------------------


class ContactBrief(BaseModel):
    """Enough of a contact to tell two apart."""

    id: int
    name: str
    phone: str | None = Field(description="As people read it (+49 170 1234567)")
    email: str | None
    company: str | None
    created_at: datetime | None
    last_inbound_at: datetime | None

    @classmethod
    def of(cls, contact: Contact) -> "ContactBrief":
        return cls(
            id=contact.id,
            name=name_of(contact),
            phone=pretty(contact.wa_id),
            email=contact.email,
            company=contact.company,
            created_at=contact.created_at,
            last_inbound_at=contact.last_inbound_at,
        )


class DuplicatePair(BaseModel):
    """Two contacts that look like one customer; `first` is the older record (the smaller id)."""

    first: ContactBrief
    second: ContactBrief
    reasons: list[Literal["email", "phone", "name"]] = Field(description="Why they look alike")


@dataclass(frozen=True)
class Suggestions:
    items: list[DuplicatePair]
    next_cursor: str | None
    partial: bool  # the scan stopped at MAX_CONTACTS


@dataclass(frozen=True)
class PairCursor:
    """Where a page of suggestions ends: the last pair's (rank, first id, second id)."""

    rank: int
    low: int
    high: int

    def encode(self) -> str:
        raw = f"p{self.rank}~{self.low}~{self.high}".encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str, field: str = "cursor") -> "PairCursor":
        refused = UserError(f"'{field}' is not a list position SigDesk gave out", field=field)
        if len(text) > MAX_CURSOR:
            raise refused
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        except (ValueError, binascii.Error) as exc:
            raise refused from exc
        parts = raw[1:].split("~") if raw.startswith("p") else []
        if len(parts) != 3 or not all(part.isascii() and part.isdigit() and len(part) <= 16 for part in parts):
            raise refused
        return cls(*(int(part) for part in parts))

    def key(self) -> tuple[int, int, int]:
        return (self.rank, self.low, self.high)


def _pairs_within(groups: Iterable[list[int]]) -> Iterable[tuple[int, int]]:
    for ids in groups:
        if 1 < len(ids) <= MAX_GROUP:
            ordered = sorted(set(ids))
            for i, low in enumerate(ordered):
                for high in ordered[i + 1 :]:
                    yield low, high


class _Groups:
    """Ids by key, keeping a list only for keys seen twice (most keys are one contact's)."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}
        self.more: dict[str, list[int]] = {}

    def add(self, key: str | None, contact_id: int) -> None:
        if not key:
            return
        first = self.first.setdefault(key, contact_id)
        if first != contact_id:
            self.more.setdefault(key, [first]).append(contact_id)

    def shared(self) -> Iterable[list[int]]:
        return self.more.values()


def find_pairs(session: Session) -> tuple[dict[tuple[int, int], set[str]], bool]:
    """Every pair of contacts that look alike, with why, before dismissals; and whether the scan was cut short."""
    found: dict[tuple[int, int], set[str]] = defaultdict(set)
    shared = select(Contact.email).where(Contact.email.is_not(None)).group_by(Contact.email)
    shared = shared.having(func.count() > 1).having(func.count() <= MAX_GROUP)
    emails: dict[str, list[int]] = defaultdict(list)
    for contact_id, email in session.execute(
        select(Contact.id, Contact.email).where(Contact.email.in_(shared.scalar_subquery()))
    ):
        emails[email].append(contact_id)
    for pair in _pairs_within(emails.values()):
        found[pair].add("email")

    country = default_country(session)
    phones, names = _Groups(), _Groups()
    last, seen, partial = 0, 0, False
    columns = select(Contact.id, Contact.wa_id, Contact.display_name, Contact.profile_name)
    connection = session.connection()  # Core rows: the ORM's row processing would double the time
    while True:
        batch = connection.execute(columns.where(Contact.id > last).order_by(Contact.id).limit(SCAN_BATCH)).all()
        if not batch:
            break
        for contact_id, wa_id, display_name, profile_name in batch:
            phones.add(phone_key(wa_id, country), contact_id)
            given, profile = name_key(display_name), name_key(profile_name)
            names.add(given, contact_id)
            if profile != given:
                names.add(profile, contact_id)
        last = batch[-1][0]
        seen += len(batch)
        if seen >= MAX_CONTACTS:
            partial = True
            break
    for pair in _pairs_within(phones.shared()):
        found[pair].add("phone")
    for pair in _pairs_within(names.shared()):
        found[pair].add("name")
    return found, partial


_cache: dict[str, tuple[float, tuple, dict[tuple[int, int], set[str]], bool]] = {}
_cache_lock = threading.Lock()


def _crc32(value: str | None) -> int | None:
    return None if value is None else zlib.crc32(value.encode("utf-8", "surrogatepass"))


def _fingerprint(session: Session) -> tuple:
    """What the scan depends on, in one pass: how many contacts, the newest id, the latest edit, and a
    checksum of what it reads (numbers, names, profile names, emails: the sum of each contact's CRC32).
    The checksum is what sees a WhatsApp profile name change, which ingest writes without an edit time.
    MariaDB has CRC32; SQLite gets it as a function on the connection. About 0.15 s for 100,000 contacts
    on SQLite (the scan: about a second)."""
    c = Contact.__table__.c
    joined = func.coalesce(c.wa_id, "")
    for column in (c.display_name, c.profile_name, c.email):
        joined = joined + "|" + func.coalesce(column, "")  # || on SQLite, concat() on MariaDB
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.connection.driver_connection.create_function("crc32", 1, _crc32, deterministic=True)
    query = select(func.count(), func.max(c.id), func.max(c.updated_at), func.sum(func.crc32(joined)))
    return tuple(connection.execute(query).one())


def _cached_pairs(session: Session) -> tuple[dict[tuple[int, int], set[str]], bool]:
    """find_pairs, kept while the contacts look unchanged (_fingerprint), so paging through the list does
    not scan every contact again; any change of a number, name, profile name or email starts a new scan.
    CACHE_SECONDS bounds what the fingerprint does not see (the default country setting)."""
    fingerprint = _fingerprint(session)
    where = str(session.get_bind().url)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(where)
        if cached is not None and cached[1] == fingerprint and now - cached[0] < CACHE_SECONDS:
            return cached[2], cached[3]
    found, partial = find_pairs(session)
    with _cache_lock:
        _cache[where] = (now, fingerprint, found, partial)
    return found, partial


def _rank(reasons: set[str]) -> int:
    """Stronger evidence first: an email or a number says more than a name."""
    return 0 if reasons & {"email", "phone"} else 1


def suggestions(session: Session, limit: int = 50, cursor: PairCursor | str | None = None) -> Suggestions:
    """Likely duplicates not dismissed, the pairs with a shared email or number first, paged by PairCursor."""
    if isinstance(cursor, str):
        cursor = PairCursor.decode(cursor) if cursor else None
    found, partial = _cached_pairs(session)
    dismissed = {
        (low, high) for low, high in session.execute(select(DuplicateDismissal.low_id, DuplicateDismissal.high_id))
    }
    ranked = sorted(
        (_rank(reasons), low, high) for (low, high), reasons in found.items() if (low, high) not in dismissed
    )
    if cursor is not None:
        ranked = [key for key in ranked if key > cursor.key()]
    chosen = ranked[:limit]
    ids = {contact_id for _rank_, low, high in chosen for contact_id in (low, high)}
    contacts = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(sorted(ids))))} if ids else {}
    items = [
        DuplicatePair(
            first=ContactBrief.of(contacts[low]),
            second=ContactBrief.of(contacts[high]),
            reasons=[reason for reason in REASONS if reason in found[(low, high)]],  # type: ignore[misc]
        )
        for _rank_, low, high in chosen
    ]
    more = len(ranked) > limit and bool(chosen)
    return Suggestions(items, PairCursor(*chosen[-1]).encode() if more else None, partial)


# --- preview -------------------------------------------------------------------------------------


class FieldChoice(BaseModel):
    """One field of a merge: both values as people read them, and which wins unless the user picks."""

    field: str = Field(description="The pick's name: a standard field, 'stage', or 'custom.<key>'")
    label: str
    kept: str | None = Field(description="The kept contact's value, as shown")
    merged: str | None = Field(description="The merged contact's value, as shown")
    conflict: bool = Field(description="Both have a value and they differ: the user picks")
    default: Pick = Field(description="The pick when none is given: a value wins over none, else the kept one")


class MergeMoves(BaseModel):
    """What moves from the merged contact to the kept one."""

    conversations: int
    messages: int
    notes: int
    tags: int = Field(description="Tags the kept contact does not have yet")
    consent_events: int
    stage_changes: int


class MergePreview(BaseModel):
    keep: ContactBrief
    merge: ContactBrief
    fields: list[FieldChoice]
    moves: MergeMoves
    remarks: list[str] = Field(description="What else happens, in words (phone numbers, conversations)")


def get_pair(session: Session, keep_id: int, merge_id: int) -> tuple[Contact, Contact]:
    """Both contacts, or the refusal: the same id twice (422 naming merge_id), or one unknown (404)."""
    if keep_id == merge_id:
        raise Refused("A contact cannot be merged into itself: choose another contact to merge", field="merge_id")
    kept = session.get(Contact, keep_id)
    if kept is None:
        raise NotFound(f"There is no contact {keep_id}", field="contact_id")
    merged = session.get(Contact, merge_id)
    if merged is None:
        raise NotFound(f"There is no contact {merge_id}", field="merge_id")
    return kept, merged


def custom_values(session: Session, contact_id: int) -> dict[int, ContactFieldValue]:
    return {
        row.field_id: row
        for row in session.scalars(select(ContactFieldValue).where(ContactFieldValue.contact_id == contact_id))
    }


def shown_custom(field: ContactField, row: ContactFieldValue | None) -> str | None:
    """A custom field's value as people read it."""
    if row is None:
        return None
    if field.kind == "boolean":
        return None if row.number_value is None else ("Yes" if row.number_value else "No")
    if field.kind in ("number", "currency"):
        if row.number_value is None:
            return None
        number = f"{row.number_value:g}"
        return f"{number} {field.currency}" if field.kind == "currency" and field.currency else number
    if field.kind == "date":
        return row.date_value.isoformat() if isinstance(row.date_value, date) else None
    if field.kind == "choices" and row.text_value:
        try:
            chosen = json.loads(row.text_value)
        except ValueError:
            return row.text_value
        return ", ".join(str(item) for item in chosen) if isinstance(chosen, list) else row.text_value
    return row.text_value


def stage_of(session: Session, contact_id: int) -> Stage | None:
    return session.scalar(select(Stage).join(ContactStage).where(ContactStage.contact_id == contact_id))


def _user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({user_id for user_id in ids if user_id is not None})
    if not wanted:
        return {}
    return {user_id: name for user_id, name in session.execute(select(User.id, User.name).where(User.id.in_(wanted)))}


def _choice(field: str, label: str, kept: Any, merged: Any, shown: Callable[[Any], str | None]) -> FieldChoice:
    empty_kept, empty_merged = kept in (None, ""), merged in (None, "")
    return FieldChoice(
        field=field,
        label=label,
        kept=shown(kept),
        merged=shown(merged),
        conflict=not empty_kept and not empty_merged and kept != merged,
        default="merge" if empty_kept and not empty_merged else "keep",
    )


def choices(session: Session, kept: Contact, merged: Contact) -> list[FieldChoice]:
    """Every field a merge decides, standard fields first, then the stage, then custom fields in order."""
    owners = _user_names(session, (kept.owner_id, merged.owner_id))
    found: list[FieldChoice] = []
    for field in STANDARD:
        column = COLUMN_OF[field]
        shown: Callable[[Any], str | None] = (
            (lambda value: None if value is None else owners.get(value, f"User {value}"))
            if field == "owner_id"
            else (lambda value: value)
        )
        found.append(_choice(field, LABELS[field], getattr(kept, column), getattr(merged, column), shown))
    stages = stage_of(session, kept.id), stage_of(session, merged.id)
    found.append(
        _choice(
            "stage",
            LABELS["stage"],
            stages[0].id if stages[0] else None,
            stages[1].id if stages[1] else None,
            lambda value: next((stage.name for stage in stages if stage is not None and stage.id == value), None),
        )
    )
    kept_values, merged_values = custom_values(session, kept.id), custom_values(session, merged.id)
    ids = sorted(set(kept_values) | set(merged_values))
    if ids:
        fields = session.scalars(
            select(ContactField).where(ContactField.id.in_(ids)).order_by(ContactField.position, ContactField.id)
        )
        for field in fields:
            a, b = shown_custom(field, kept_values.get(field.id)), shown_custom(field, merged_values.get(field.id))
            found.append(_choice(CUSTOM + field.key, field.label, a, b, lambda value: value))
    return found


def _count(session: Session, statement) -> int:
    return session.scalar(statement) or 0


def moves(session: Session, kept_id: int, merged_id: int) -> MergeMoves:
    conversations = select(Conversation.id).where(Conversation.contact_id == merged_id).scalar_subquery()
    kept_tags = select(ContactTag.tag_id).where(ContactTag.contact_id == kept_id).scalar_subquery()
    return MergeMoves(
        conversations=_count(
            session, select(func.count()).select_from(Conversation).where(Conversation.contact_id == merged_id)
        ),
        messages=_count(session, select(func.count()).select_from(Message).where(Message.contact_id == merged_id)),
        notes=_count(session, select(func.count()).select_from(Note).where(Note.conversation_id.in_(conversations))),
        tags=_count(
            session,
            select(func.count())
            .select_from(ContactTag)
            .where(ContactTag.contact_id == merged_id, ContactTag.tag_id.not_in(kept_tags)),
        ),
        consent_events=_count(
            session, select(func.count()).select_from(ConsentEvent).where(ConsentEvent.contact_id == merged_id)
        ),
        stage_changes=_count(
            session, select(func.count()).select_from(StageChange).where(StageChange.contact_id == merged_id)
        ),
    )


def remarks(session: Session, kept: Contact, merged: Contact) -> list[str]:
    """What a merge does besides the fields, said before it is done."""
    said = []
    if kept.wa_id and merged.wa_id and kept.wa_id != merged.wa_id:
        said.append(
            f"The kept contact keeps its WhatsApp number {pretty(kept.wa_id)}. The conversation and messages of "
            f"{pretty(merged.wa_id)} move to it, but a new message from {pretty(merged.wa_id)} will start a new "
            "contact."
        )
    elif merged.wa_id and not kept.wa_id:
        said.append(f"The kept contact takes the WhatsApp number {pretty(merged.wa_id)}.")
    if merged.user_id and not kept.user_id:
        said.append("The kept contact takes the merged one's WhatsApp user id.")
    both = session.scalars(select(Conversation.contact_id).where(Conversation.contact_id.in_((kept.id, merged.id))))
    if len(set(both)) == 2:
        said.append("Both have a conversation: the merged one's messages and notes join the kept one's conversation.")
    said.append(
        "Tags are combined; consent events, stage history, conversations, messages and notes move to the kept "
        "contact, whose marketing consent follows the latest word of either. The merged contact is then deleted."
    )
    return said


def preview(session: Session, keep_id: int, merge_id: int) -> MergePreview:
    """What merging `merge_id` into `keep_id` would do: per field both values, whether they conflict and
    which wins by default; what moves; what else happens. Refuses as the merge itself would."""
    kept, merged = get_pair(session, keep_id, merge_id)
    return MergePreview(
        keep=ContactBrief.of(kept),
        merge=ContactBrief.of(merged),
        fields=choices(session, kept, merged),
        moves=moves(session, kept.id, merged.id),
        remarks=remarks(session, kept, merged),
    )


# --- past merges ---------------------------------------------------------------------------------


class MergeRecord(BaseModel):
    """A past merge: who merged which contact (as it was) into which, and which values won."""

    id: int
    kept_id: int = Field(description="The contact that holds this history now")
    into_id: int = Field(description="The contact it was merged into at the time")
    merged_id: int = Field(description="The merged contact's id (it no longer exists)")
    merged: dict[str, Any] = Field(
        description="The merged contact's fields as they were; once the contact holding the merge is anonymised, "
        "only created_at and anonymised: true"
    )
    picks: dict[str, Pick] = Field(description="Which contact's value won, by field")
    actor_id: int | None
    actor_name: str | None = Field(description="Who merged; null: SigDesk itself, or a user since removed")
    channel: str | None
    created_at: datetime
    summary: str = Field(description="The merge in one sentence")


def merges_of(session: Session, contact_id: int) -> list[MergeRecord]:
    """The merges a contact holds, newest first (including those of contacts merged into it earlier)."""
    if session.scalar(select(Contact.id).where(Contact.id == contact_id)) is None:
        raise NotFound(f"There is no contact {contact_id}", field="contact_id")
    rows = list(
        session.scalars(
            select(ContactMerge)
            .where(ContactMerge.kept_id == contact_id)
            .order_by(ContactMerge.created_at.desc(), ContactMerge.id.desc())
            .limit(MAX_MERGES_SHOWN)
        )
    )
    names = _user_names(session, (row.actor_id for row in rows))
    found = []
    for row in rows:
        snapshot = json.loads(row.snapshot)
        actor = names.get(row.actor_id) if row.actor_id is not None else None
        who = actor or "SigDesk"
        merged_name = snapshot.get("name") or snapshot.get("profile_name") or f"Contact {row.merged_id}"
        found.append(
            MergeRecord(
                id=row.id,
                kept_id=row.kept_id,
                into_id=row.into_id,
                merged_id=row.merged_id,
                merged=snapshot,
                picks=json.loads(row.picks),
                actor_id=row.actor_id,
                actor_name=actor,
                channel=row.channel,
                created_at=row.created_at,
                summary=f"{who} merged {merged_name} (contact {row.merged_id}) into contact {row.into_id}.",
            )
        )
    return found
