"""Computing lead scores, in SQL and in the worker, never in a request.

Every rule becomes a condition of a contact query; one UPDATE sets each contact's score (the clamped sum
of CASEs) and its reasons (the JSON list, concatenated from the matching rules' reasons in rule order),
for a list of contacts or a range of ids. So rescoring everyone after a rules change is one statement per
range of BATCH ids, and rescoring the contacts of a burst of events is one statement.

The outbox consumer `LeadScoreConsumer` hears the events that can change a score. For ingest's
message.received it stays cheap: the rules are cached (reloaded when it reads a rules change), the one
read per batch notes who replied within a day, and it writes only for contacts not scored yet or when a
rule reads messages.

A kind whose facts live elsewhere (has_ordered, from sigdesk.sales) plugs its condition in with
`plug(kind, condition, contact_events=..., everyone_events=...)`, naming the events that change what it
matches, so the lead score never names another feature's events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, String, case, false, func, literal, select, update
from sqlalchemy.orm import Session

from sigdesk.db import dump_json, utcnow, write_lock
from sigdesk.errors import UserError
from sigdesk.events.catalogue import CATALOGUE, MessageReceived
from sigdesk.events.outbox import Stored
from sigdesk.lead_score.services import KINDS, MAX_SCORE, field_value, list_rules
from sigdesk.lifecycle.services import in_stage, tagged
from sigdesk.models import Contact, Direction, LeadScoreRule, Message
from sigdesk.custom_fields import services as custom_fields

log = logging.getLogger(__name__)

BATCH = 5000  # ids per UPDATE when everyone is rescored
IDS_PER_UPDATE = 500
REPLY_WINDOW = timedelta(days=1)
DECAY_EVERY = 600.0  # seconds between passes that take "wrote within N days" off those who stopped writing


@dataclass(frozen=True)
class Rule:
    """A rule as the scorer reads it (a snapshot: the worker caches these between rules changes)."""

    id: int
    kind: str
    argument: str | None
    points: int
    label: str

    @classmethod
    def of(cls, row: LeadScoreRule) -> "Rule":
        return cls(row.id, row.kind, row.argument, row.points, row.label)

    @property
    def reason(self) -> str:
        """Its reason as stored in contacts.lead_score_reasons (see services.LeadReason)."""
        return dump_json({"label": self.label, "points": self.points, "source": "rule", "rule_id": self.id})


Condition = Callable[[Session, Rule, datetime], ColumnElement[bool]]


def _field_set(session: Session, rule: Rule, now: datetime) -> ColumnElement[bool]:
    row = custom_fields.find_field(session, rule.argument or "")
    if row is None:
        return false()
    return custom_fields.condition(custom_fields.FieldDefinition.of(row), "set")


def _field_equals(session: Session, rule: Rule, now: datetime) -> ColumnElement[bool]:
    try:
        definition, value = field_value(session, rule.argument or "")
    except UserError:  # the field is gone, or the value no longer fits its kind: the rule matches nobody
        return false()
    if value is None:
        return false()
    return custom_fields.condition(definition, "has" if definition.kind == "choices" else "is", value)


def _recent_inbound(session: Session, rule: Rule, now: datetime) -> ColumnElement[bool]:
    days = int(rule.argument) if (rule.argument or "").isdigit() else 0
    return Contact.last_inbound_at >= now - timedelta(days=days)


CONDITIONS: dict[str, Condition] = {
    "opted_in": lambda session, rule, now: Contact.marketing_consent == "opted_in",
    "replied_within_day": lambda session, rule, now: Contact.replied_within_day_at.is_not(None),
    "has_tag": lambda session, rule, now: tagged(rule.argument or ""),
    "in_stage": lambda session, rule, now: in_stage(rule.argument or ""),
    "field_set": _field_set,
    "field_equals": _field_equals,
    "recent_inbound": _recent_inbound,
    # Orders arrive in a later issue: until it plugs in its condition, nobody has ordered.
    "has_ordered": lambda session, rule, now: false(),
}


# The events plugged kinds named (see plug), and whether a consumer has already been registered with the
# names known then: one named later would never reach it.
PLUGGED_CONTACT_EVENTS: set[str] = set()
PLUGGED_EVERYONE_EVENTS: set[str] = set()
_listening = False


def plug(
    kind: str, condition: Condition, *, contact_events: Iterable[str] = (), everyone_events: Iterable[str] = ()
) -> None:
    """Give a kind its condition: `condition(session, rule, now)` is where a contact matches the rule.

    `contact_events` are the events (each with a `contact_id`) after which that contact may match it
    differently, so the consumer rescores them; `everyone_events` those after which anybody may (an
    import), so it rescores everyone. The feature plugging in must be wired before sigdesk.lead_score's
    (sigdesk/features.py): the outbox learns which events the consumer reads when it is registered.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown lead score rule kind {kind!r}")
    new = (set(contact_events) - PLUGGED_CONTACT_EVENTS) | (set(everyone_events) - PLUGGED_EVERYONE_EVENTS)
    if new and _listening:
        raise RuntimeError(
            f"lead score events {sorted(new)} were plugged after the lead score's consumer was registered: "
            "wire the feature before sigdesk.lead_score.feature"
        )
    CONDITIONS[kind] = condition
    PLUGGED_CONTACT_EVENTS.update(contact_events)
    PLUGGED_EVERYONE_EVENTS.update(everyone_events)


def load_rules(session: Session) -> list[Rule]:
    return [Rule.of(row) for row in list_rules(session) if row.kind in KINDS]


def _text(value: str) -> ColumnElement[str]:
    return literal(value, String)


def _clamp(session: Session, total: ColumnElement[int]) -> ColumnElement[int]:
    if session.get_bind().dialect.name == "sqlite":
        return func.max(0, func.min(MAX_SCORE, total))
    return func.greatest(0, func.least(MAX_SCORE, total))


def values(session: Session, rules: Sequence[Rule], now: datetime | None = None) -> dict[str, ColumnElement]:
    """The SET of the UPDATE that scores contacts by these rules."""
    now = now or utcnow()
    if not rules:
        return {"lead_score": literal(0), "lead_score_reasons": _text("[]")}
    conditions = [(rule, CONDITIONS[rule.kind](session, rule, now)) for rule in rules]
    total: ColumnElement[int] = literal(0)
    listed: ColumnElement[str] = _text("")
    for rule, condition in conditions:
        total = total + case((condition, rule.points), else_=0)
        listed = listed + case((condition, _text("," + rule.reason)), else_=_text(""))
    return {
        "lead_score": _clamp(session, total),
        "lead_score_reasons": _text("[") + func.substr(listed, 2) + _text("]"),
    }


def matching(session: Session, rule: Rule, now: datetime | None = None) -> ColumnElement[bool]:
    """Where a contact matches one rule (for the rules page's preview counts)."""
    return CONDITIONS[rule.kind](session, rule, now or utcnow())


def count_matching(session: Session, rules: Sequence[Rule]) -> dict[int, int]:
    now = utcnow()
    return {
        rule.id: session.scalar(select(func.count()).select_from(Contact).where(matching(session, rule, now))) or 0
        for rule in rules
    }


def rescore(session: Session, rules: Sequence[Rule], where: ColumnElement[bool], now: datetime | None = None) -> int:
    """Score the contacts `where` says (as of `now`); the caller holds the write lock and commits."""
    statement = update(Contact).where(where).values(**values(session, rules, now))
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount or 0


def rescore_ids(
    session: Session, rules: Sequence[Rule], contact_ids: Iterable[int], now: datetime | None = None
) -> int:
    ids = sorted(set(contact_ids))
    done = 0
    for start in range(0, len(ids), IDS_PER_UPDATE):
        done += rescore(session, rules, Contact.id.in_(ids[start : start + IDS_PER_UPDATE]), now)
    return done


def rescore_everyone(session: Session, rules: Sequence[Rule] | None = None, batch: int = BATCH) -> int:
    """Every contact, one UPDATE and one commit per range of `batch` ids, so ingest writes in between."""
    if rules is None:
        rules = load_rules(session)
    session.commit()
    low, high = session.execute(select(func.min(Contact.id), func.max(Contact.id))).one()
    session.commit()
    if low is None:
        return 0
    done = 0
    for start in range(low, high + 1, batch):
        with write_lock(session):
            done += rescore(session, rules, Contact.id.between(start, start + batch - 1))
            session.commit()
    log.info("lead score: rescored %s contacts", done)
    return done


# --- replied within a day ----------------------------------------------------------------------------


def note_replies(session: Session, message_ids: Sequence[int]) -> dict[int, datetime]:
    """Of these messages, the inbound ones that answered an outbound message of the same conversation
    within 24 hours, from contacts not yet known to reply so: contact id -> when (one read, plus one
    more only when there are such contacts)."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(Message.contact_id, Message.conversation_id, Message.timestamp)
        .join(Contact, Contact.id == Message.contact_id)
        .where(
            Message.id.in_(message_ids),
            Message.direction == Direction.IN.value,
            Contact.replied_within_day_at.is_(None),
        )
    ).all()
    if not rows:
        return {}
    earliest = min(row.timestamp for row in rows) - REPLY_WINDOW
    latest = max(row.timestamp for row in rows)
    sent: dict[int, list[datetime]] = {}
    for conversation_id, at in session.execute(
        select(Message.conversation_id, Message.timestamp).where(
            Message.conversation_id.in_({row.conversation_id for row in rows}),
            Message.direction == Direction.OUT.value,
            Message.timestamp.between(earliest, latest),
        )
    ):
        sent.setdefault(conversation_id, []).append(at)
    replied: dict[int, datetime] = {}
    for row in rows:
        if any(at <= row.timestamp <= at + REPLY_WINDOW for at in sent.get(row.conversation_id, ())):
            if row.contact_id not in replied or row.timestamp < replied[row.contact_id]:
                replied[row.contact_id] = row.timestamp
    return replied


# --- the outbox consumer -----------------------------------------------------------------------------

# Events naming a contact whose score may have changed.
CONTACT_EVENTS = (
    "contact.created",
    "contact.changed",
    "contact.tagged",
    "contact.stage_changed",
    "consent.recorded",
)
# Events after which everyone is rescored: the rules, or what they name (a tag, stage or field renamed or
# deleted), changed; or many contacts changed at once.
EVERYONE_EVENTS = (
    "lead_score.rules_changed",
    "tag.changed",
    "stage.changed",
    "contact_field.defined",
    "contact_field.changed",
    "contact_field.deleted",
    "contacts.bulk_changed",
    "contacts.imported",
    "contacts.import_undone",
)
RULES_EVENTS = ("lead_score.rules_changed", "contact_field.changed", "contact_field.deleted")


class LeadScoreConsumer:
    """Recompute the scores the events of a batch may have changed (see the module's docstring)."""

    def __init__(self) -> None:
        self.rules: list[Rule] | None = None

    @property
    def events(self) -> list[str]:
        """What to register the consumer for: its own events and those the plugged kinds named."""
        global _listening
        _listening = True
        names = {
            MessageReceived.name,
            *CONTACT_EVENTS,
            *PLUGGED_CONTACT_EVENTS,
            *EVERYONE_EVENTS,
            *PLUGGED_EVERYONE_EVENTS,
            "contacts.merged",
        }
        # Some names come with features that may not be installed: listen only to those that exist.
        return sorted(name for name in names if name in CATALOGUE)

    def __call__(self, session: Session, events: list[Stored]) -> int:
        if self.rules is None or any(item.event.name in RULES_EVENTS for item in events):
            self.rules = load_rules(session)
        rules = self.rules
        everyone = any(
            item.event.name in EVERYONE_EVENTS or item.event.name in PLUGGED_EVERYONE_EVENTS for item in events
        )
        contacts: set[int] = set()
        received: dict[int, int] = {}  # message id -> contact id
        for item in events:
            event = item.event
            if isinstance(event, MessageReceived):
                if event.contact_id is not None:
                    received[event.message_id] = event.contact_id
            elif event.name == "contacts.merged":
                contacts.add(event.kept_id)  # type: ignore[attr-defined]
            elif isinstance(getattr(event, "contact_id", None), int):
                contacts.add(event.contact_id)  # type: ignore[attr-defined]
        replied = note_replies(session, sorted(received))
        if received:
            if any(KINDS[rule.kind].reads_messages for rule in rules):
                contacts.update(received.values())
            elif rules:  # only those not scored yet (new customers), and those who just replied
                contacts.update(replied)
                contacts.update(
                    session.scalars(
                        select(Contact.id).where(
                            Contact.id.in_(sorted(set(received.values()))), Contact.lead_score.is_(None)
                        )
                    )
                )
        session.commit()  # ends the reading transaction; the writes below take the write lock
        if not (replied or contacts or everyone):
            return 0
        with write_lock(session):
            for contact_id, at in replied.items():
                session.execute(
                    update(Contact)
                    .where(Contact.id == contact_id, Contact.replied_within_day_at.is_(None))
                    .values(replied_within_day_at=at)
                    .execution_options(synchronize_session=False)
                )
            if contacts and not everyone:
                rescore_ids(session, rules, contacts)
            session.commit()
        if everyone:
            rescore_everyone(session, rules)
        return len(events)


# --- time passing: "wrote within N days" ends by itself --------------------------------------------------


class Decay:
    """The worker task that rescores those a "wrote within N days" rule still credits after N days passed;
    it looks every DECAY_EVERY seconds (their reasons name the rule, so the search is by text)."""

    def __init__(self) -> None:
        self.next_run = 0.0

    def __call__(self, session: Session) -> int:
        if time.monotonic() < self.next_run:
            return 0
        self.next_run = time.monotonic() + DECAY_EVERY
        return self.run(session)

    @staticmethod
    def run(session: Session, now: datetime | None = None) -> int:
        now = now or utcnow()
        rules = load_rules(session)
        done = 0
        for rule in rules:
            if rule.kind != "recent_inbound":
                continue
            credited = Contact.lead_score_reasons.contains(f'"rule_id":{rule.id}}}', autoescape=True)
            stale = Contact.last_inbound_at.is_(None) | (
                Contact.last_inbound_at < now - timedelta(days=int(rule.argument or 0))
            )
            ids = list(session.scalars(select(Contact.id).where(credited, stale)))
            session.commit()
            if ids:
                with write_lock(session):
                    done += rescore_ids(session, rules, ids, now)
                    session.commit()
        return done
