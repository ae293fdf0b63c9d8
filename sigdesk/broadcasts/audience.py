"""Who a broadcast goes to: the audience as chosen, the one eligibility rule, and the frozen recipient list.

verdicts() is the single rule, used when the audience is frozen at start and again by the engine just
before each send (a customer may opt out in between): marketing templates only to contacts whose latest
word is an opt-in; utility templates as the broadcasts.utility_consent setting says; never to a number that
cannot receive (none, invalid, Meta said 131026 before, +1 for marketing: Meta does not deliver marketing
templates to US numbers); and never twice to the same person (numbers compared as merge compares them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from sigdesk.broadcasts import variables
from sigdesk.db import read_json
from sigdesk.errors import NotFound, UserError
from sigdesk.merge.services import phone_key
from sigdesk.models import Contact, Message, Template
from sigdesk.models.broadcast import Broadcast, BroadcastRecipient
from sigdesk.models.contact_import import ImportChange, ImportJob
from sigdesk.segments import services as segments
from sigdesk.settings import services as settings_services

BATCH = 1000
CANNOT_RECEIVE = 131026
WINDOW = timedelta(hours=24)

NO_NUMBER = "no WhatsApp number"
INVALID_NUMBER = "invalid phone number"
DUPLICATE = "duplicate number"
UNREACHABLE = "cannot receive WhatsApp (Meta error 131026)"
OPTED_OUT = "opted out of marketing"
NO_OPT_IN = "no marketing opt-in"
US_MARKETING = "US number (+1): Meta does not deliver marketing templates"
DELETED = "contact deleted"


@dataclass(frozen=True)
class Verdict:
    contact_id: int
    wa_id: str | None
    state: str  # "pending" or "skipped"
    reason: str | None = None


@dataclass(frozen=True)
class Summary:
    """What a broadcast will do, shown before it starts (and as frozen once it has)."""

    will_send: int
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    duration_seconds: int = 0
    limit_used_share: float | None = None
    limit_tier: str = "250"
    new_unique: int = 0

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by_reason.values())


setting = settings_services.plain


def audience_of(broadcast: Broadcast) -> dict[str, Any]:
    found = read_json(broadcast.audience) if broadcast.audience else None
    return found if isinstance(found, dict) else {}


def contact_ids(session: Session, audience: dict[str, Any]) -> Iterator[int]:
    """The audience's contacts in id order: a segment as it is now, the contacts chosen, or those of a
    finished contacts import. Read in batches, so a large segment never sits in memory."""
    if audience.get("segment_id") is not None:
        definition = segments.definition_of(session, audience["segment_id"], field="audience.segment_id")
        yield from segments.contact_ids(session, definition, batch=BATCH)
    elif audience.get("contact_ids") is not None:
        wanted = sorted({int(value) for value in audience["contact_ids"]})
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            yield from session.scalars(select(Contact.id).where(Contact.id.in_(chunk)).order_by(Contact.id))
    elif audience.get("import_id") is not None:
        job = import_job(session, audience["import_id"])
        last = 0
        while True:
            ids = list(
                session.scalars(
                    select(ImportChange.contact_id)
                    .distinct()
                    .join(Contact, Contact.id == ImportChange.contact_id)
                    .where(ImportChange.job_id == job.id, ImportChange.contact_id > last)
                    .order_by(ImportChange.contact_id)
                    .limit(BATCH)
                )
            )
            yield from ids
            if len(ids) < BATCH:
                return
            last = ids[-1]
    else:
        raise UserError("Choose the audience: a segment, contacts or an import", field="audience")


def import_job(session: Session, import_id: int) -> ImportJob:
    job = session.get(ImportJob, import_id)
    if job is None or (job.kind or "contacts") != "contacts":
        raise NotFound(f"There is no contacts import {import_id}", field="audience.import_id")
    if job.state != "done":
        raise UserError(
            f"The import {import_id} is {job.state}; only a finished import can be a broadcast's audience",
            field="audience.import_id",
        )
    return job


def check(session: Session, audience: dict[str, Any]) -> None:
    """Refuse an audience that names what does not exist, naming the field (create and update)."""
    if audience.get("segment_id") is not None:
        segments.get_segment(session, audience["segment_id"], field="audience.segment_id")
    elif audience.get("contact_ids") is not None:
        wanted = sorted({int(value) for value in audience["contact_ids"]})
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            found = set(session.scalars(select(Contact.id).where(Contact.id.in_(chunk))))
            missing = [value for value in chunk if value not in found]
            if missing:
                place = audience["contact_ids"].index(missing[0])
                raise NotFound(f"There is no contact {missing[0]}", field=f"audience.contact_ids.{place}")
    elif audience.get("import_id") is not None:
        import_job(session, audience["import_id"])
    else:
        raise UserError("Choose the audience: a segment, contacts or an import", field="audience")


def _valid(wa_id: str) -> bool:
    """International digits Meta could address (E.164: at most 15, a country code first). Looser than
    libphonenumber on purpose: Meta's own wa_ids include forms it calls impossible (Mexico's 521...)."""
    return wa_id.isascii() and wa_id.isdigit() and 8 <= len(wa_id) <= 15 and wa_id[0] != "0"


def category_of(session: Session, broadcast: Broadcast) -> str:
    template = session.get(Template, broadcast.template_id) if broadcast.template_id else None
    return ((template.category if template is not None else None) or broadcast.template_category or "").upper()


def verdicts(
    session: Session,
    broadcast: Broadcast,
    contact_ids: Iterable[int],
    now: datetime,
    seen: set[str] | None = None,
) -> list[Verdict]:
    """Whether each contact may get this broadcast now, in the order given. `seen` carries the numbers of
    earlier batches (freeze), so a second contact that may receive it, with a number already claimed by one
    that may, is skipped as a duplicate."""
    ids = list(contact_ids)
    if not ids:
        return []
    seen = set() if seen is None else seen
    marketing = category_of(session, broadcast) == "MARKETING"
    utility_rule = setting(session, "broadcasts.utility_consent")
    rows = {
        row.id: row
        for row in session.execute(
            select(Contact.id, Contact.wa_id, Contact.marketing_consent, Contact.opted_out_marketing).where(
                Contact.id.in_(ids)
            )
        )
    }
    unreachable = set(
        session.scalars(
            select(Message.contact_id)
            .distinct()
            .where(Message.contact_id.in_(ids), Message.error_code == CANNOT_RECEIVE)
        )
    )
    found: list[Verdict] = []
    for contact_id in ids:
        row = rows.get(contact_id)
        if row is None:
            found.append(Verdict(contact_id, None, "skipped", DELETED))
            continue
        wa_id = row.wa_id
        reason = _reason(row, wa_id, marketing, utility_rule, contact_id in unreachable)
        if reason is None:  # only a contact who may receive it claims the number: the person's record that
            key = phone_key(wa_id) or wa_id or ""  # opted in is the one sent to, whichever was entered first
            if key in seen:
                reason = DUPLICATE
            else:
                seen.add(key)
        found.append(Verdict(contact_id, wa_id, "skipped" if reason else "pending", reason))
    return found


def _reason(row: Any, wa_id: str | None, marketing: bool, utility_rule: str, unreachable: bool) -> str | None:
    if not wa_id:
        return NO_NUMBER
    if not _valid(wa_id):
        return INVALID_NUMBER
    if unreachable:
        return UNREACHABLE
    opted_out = row.opted_out_marketing or row.marketing_consent == "opted_out"
    if marketing:
        if opted_out:
            return OPTED_OUT
        if row.marketing_consent != "opted_in":
            return NO_OPT_IN
        if wa_id.startswith("1"):
            return US_MARKETING
        return None
    if utility_rule == "opted_in" and row.marketing_consent != "opted_in":
        return OPTED_OUT if opted_out else NO_OPT_IN
    if opted_out:
        return OPTED_OUT
    return None


def judged(
    session: Session, broadcast: Broadcast, contact_ids: Iterable[int], now: datetime, seen: set[str] | None = None
) -> list[Verdict]:
    """verdicts(), and a recipient whose variables cannot be filled (a value missing without a fallback) is
    skipped with that reason too: what the summary counts and freeze writes."""
    found = verdicts(session, broadcast, contact_ids, now, seen)
    given = read_json(broadcast.variables, dict, "broadcasts.variables") if broadcast.variables else {}
    if not given or variables.always_filled(given):
        return found
    facts = variables.facts_for(session, [verdict.contact_id for verdict in found if verdict.state == "pending"])
    result = []
    for verdict in found:
        if verdict.state == "pending":
            filled = variables.fill(given, facts.get(verdict.contact_id) or variables.ContactFacts(verdict.contact_id))
            if isinstance(filled, str):
                verdict = Verdict(verdict.contact_id, verdict.wa_id, "skipped", filled)
        result.append(verdict)
    return result


def recipient_wa_id(verdict: Verdict) -> str:
    """The recipient row's number; a contact without one still gets a row (skipped), keyed apart."""
    return verdict.wa_id or f"contact-{verdict.contact_id}"


def freeze(session: Session, broadcast: Broadcast, now: datetime) -> int:
    """Write the recipients (pending, or skipped with the reason) in batches; the audience is fixed from now
    on, whatever later happens to the segment. Called by commands.start only; answers how many will send."""
    seen: set[str] = set()
    stored: set[str] = set()
    pending = total = 0
    batch: list[int] = []

    def flush(ids: list[int]) -> None:
        nonlocal pending, total
        rows = []
        for verdict in judged(session, broadcast, ids, now, seen):
            number = recipient_wa_id(verdict)
            if number in stored:
                continue
            stored.add(number)
            rows.append(
                {
                    "broadcast_id": broadcast.id,
                    "contact_id": verdict.contact_id,
                    "wa_id": number[:64],
                    "state": verdict.state,
                    "reason": verdict.reason,
                    "attempts": 0,
                    "updated_at": now,
                }
            )
            pending += verdict.state == "pending"
        if rows:
            session.execute(insert(BroadcastRecipient.__table__), rows)  # Core: the ORM bulk path costs 4x
            total += len(rows)

    for contact_id in contact_ids(session, audience_of(broadcast)):
        batch.append(contact_id)
        if len(batch) >= BATCH:
            flush(batch)
            batch = []
    flush(batch)
    broadcast.recipient_count = total
    session.flush()
    return pending


def recent_recipients(session: Session, contact_ids: Iterable[int], now: datetime) -> set[int]:
    """Of these contacts, those who got a business-initiated template in the moving 24 hours: they do not
    count again against the messaging limit."""
    ids = list(contact_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Message.contact_id)
            .distinct()
            .where(
                Message.contact_id.in_(ids),
                Message.direction == "out",
                Message.type == "template",
                Message.timestamp >= now - WINDOW,
                Message.wamid.is_not(None),
            )
        )
    )


def limit_tier(session: Session) -> str:
    return str(setting(session, "whatsapp.messaging_limit"))


def summary(session: Session, broadcast: Broadcast, now: datetime) -> Summary:
    """Will send, skipped by reason, how long at the broadcast's pace, and the share of the 24-hour
    messaging limit it uses. Before start from the audience as it is now; after, from the frozen recipients."""
    skipped: dict[str, int] = {}
    will_send = new_unique = 0
    if broadcast.status in ("draft", "scheduled"):
        seen: set[str] = set()
        batch: list[int] = []

        def judge(ids: list[int]) -> None:
            nonlocal will_send, new_unique
            sending = []
            for verdict in judged(session, broadcast, ids, now, seen):
                if verdict.state == "pending":
                    sending.append(verdict.contact_id)
                else:
                    skipped[verdict.reason or ""] = skipped.get(verdict.reason or "", 0) + 1
            will_send += len(sending)
            new_unique += len(sending) - len(recent_recipients(session, sending, now))

        for contact_id in contact_ids(session, audience_of(broadcast)):
            batch.append(contact_id)
            if len(batch) >= BATCH:
                judge(batch)
                batch = []
        judge(batch)
    else:
        rows = session.execute(
            select(BroadcastRecipient.state, BroadcastRecipient.reason, func.count())
            .where(BroadcastRecipient.broadcast_id == broadcast.id)
            .group_by(BroadcastRecipient.state, BroadcastRecipient.reason)
        )
        for state, reason, count in rows:
            if state == "skipped":
                skipped[reason or ""] = skipped.get(reason or "", 0) + count
            elif state != "failed":
                will_send += count
        new_unique = will_send
    tier = limit_tier(session)
    rate = max(1, broadcast.rate_per_second or 1)
    return Summary(
        will_send=will_send,
        skipped_by_reason=dict(sorted(skipped.items(), key=lambda item: (-item[1], item[0]))),
        duration_seconds=math.ceil(will_send / rate),
        limit_used_share=None if tier == "unlimited" else new_unique / int(tier),
        limit_tier=tier,
        new_unique=new_unique,
    )
