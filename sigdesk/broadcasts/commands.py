"""Every change to a broadcast, one function each, taking (session, actor, ...); the caller owns the transaction.

The pages, the API, the CLI and the engine all come through here, so a campaign is refused, audited
("broadcast.<verb>") and announced (BroadcastChanged) the same way whichever way the change came in.
Status changes are compare-and-set UPDATEs (… WHERE status IN the allowed ones): two admins pressing start
at once, or a person pausing while the engine completes, cannot both win; the loser gets a Conflict (409)
that says what the campaign is now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import String, cast, literal, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.broadcasts import audience, variables
from sigdesk.broadcasts.schemas import BroadcastIn
from sigdesk.contacts.fields import default_country
from sigdesk.conversations import commands as conversations
from sigdesk.contacts.phones import normalise
from sigdesk.custom_fields import services as custom_fields
from sigdesk.db import dump_json, read_json, utcnow
from sigdesk.errors import Conflict, NotFound, Refused, UserError
from sigdesk.events.catalogue import BroadcastChanged
from sigdesk.events.outbox import record as record_event
from sigdesk.general.clock import business_zone
from sigdesk.message_templates import placeholders
from sigdesk.message_templates import services as templates
from sigdesk.models import Contact, Message, MessageStatus, Template
from sigdesk.models.broadcast import PAUSE_KINDS, RECIPIENT_RANK, Broadcast, BroadcastRecipient
from sigdesk.outbound import services as outbound

# A moment a little in the past is "now": the form was filled a minute ago, or a clock runs a little slow.
SCHEDULE_SKEW = timedelta(minutes=1)
CANCELLED = "cancelled"
NOT_A_CONTACT = (
    "Test sends go only to a number that is already a contact: add your own phone on the Contacts page "
    "first (a test never creates a contact, so nobody joins an audience by a test)"
)


def _target(broadcast_id: int) -> str:
    return f"broadcast {broadcast_id}"


def get(session: Session, broadcast_id: int, lock: bool = False) -> Broadcast:
    """The broadcast, or NotFound naming broadcast_id. `lock` reads it FOR UPDATE, as stored now: an edit or a
    delete then waits for (and sees) a start committed meanwhile, instead of rewriting a running campaign."""
    found = (
        session.scalar(
            select(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if lock
        else session.get(Broadcast, broadcast_id)
    )
    if found is None:
        raise NotFound(f"There is no broadcast {broadcast_id}", field="broadcast_id")
    return found


def _announce(session: Session, actor: Actor, broadcast: Broadcast, change: str, **detail: Any) -> None:
    record_by(session, actor, f"broadcast.{change}", _target(broadcast.id), {"status": broadcast.status, **detail})
    record_event(session, BroadcastChanged(broadcast.id, change, broadcast.status, detail.get("reason")))


# --- judging the input -----------------------------------------------------------------------------------


def approved_template(session: Session, name: str, language: str, field: str = "template") -> Template:
    """The synced template by name and language, refused unless Meta approved it (deleted, paused, rejected)."""
    template = session.scalar(select(Template).where(Template.name == name, Template.language == language))
    if template is None:
        raise NotFound(
            f"There is no template '{name}' in {language}; sync templates from Meta first", field=f"{field}.name"
        )
    status = (template.status or "").upper()
    if status != "APPROVED":
        raise Refused(
            f"The template '{name}' is {(template.status or 'not approved').lower()}; only approved templates "
            "can be broadcast",
            field=field,
        )
    return template


def _variables(session: Session, template: Template, given: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every placeholder of the template gets an expression, every expression parses and names known fields."""
    normal = variables.check(given)
    layout = templates.layout(template)
    parts = {part.name: part for part in layout.parts if part.slots}
    for component, values in normal.items():
        part = parts.get(component)
        if part is None:
            raise UserError(
                f"The template has no variables in its {component}", field=f"template.variables.{component}"
            )
        keys = {slot.key for slot in part.slots}
        for placeholder in values:
            if placeholder not in keys:
                raise UserError(
                    f"The template's {part.label} has no placeholder {placeholder}",
                    field=f"template.variables.{component}.{placeholder}",
                )
    for part in parts.values():
        for slot in part.slots:
            if slot.key not in normal.get(part.name, {}):
                raise UserError(
                    f"Say what fills {{{{{slot.key}}}}} of the template's {part.label}",
                    field=f"template.variables.{part.name}.{slot.key}",
                )
    for key, field in variables.custom_keys(normal).items():
        if custom_fields.find_field(session, key) is None:
            raise UserError(f"There is no custom field '{key}'", field=field)
    return normal


def pace_words(limit: int) -> str:
    """The one sentence a pace out of range gets, from the pages, the API and the CLI alike."""
    return (
        f"The pace must be between 1 and {limit} messages per second (this number's throughput; Settings → Broadcasts)"
    )


def _rate(session: Session, rate: int | None) -> int:
    limit = int(audience.setting(session, "whatsapp.throughput"))
    chosen = int(audience.setting(session, "broadcasts.default_rate")) if rate is None else rate
    if not 1 <= chosen <= limit:
        raise UserError(pace_words(limit), field="rate_per_second")
    return chosen


def scheduled_moment(session: Session, value: datetime | None, now: datetime) -> datetime | None:
    """A naive time is the business's wall clock; a time in the past is refused naming scheduled_at."""
    if value is None:
        return None
    moment = value.replace(tzinfo=business_zone(session)) if value.tzinfo is None else value
    moment = moment.astimezone(timezone.utc)
    if moment < now - SCHEDULE_SKEW:
        raise UserError("The time to send is in the past; choose a later time or send now", field="scheduled_at")
    return moment


def _apply(session: Session, broadcast: Broadcast, data: BroadcastIn, now: datetime) -> None:
    name = data.name.strip()
    if not name:
        raise UserError("Give the broadcast a name", field="name")
    template = approved_template(session, data.template.name, data.template.language)
    normal = _variables(session, template, data.template.variables)
    chosen = data.audience.as_dict()
    audience.check(session, chosen)
    broadcast.name = name
    broadcast.template_id = template.id
    broadcast.template_name = template.name
    broadcast.template_language = template.language
    broadcast.template_category = template.category
    broadcast.variables = dump_json(normal)
    broadcast.audience = dump_json(chosen)
    broadcast.rate_per_second = _rate(session, data.rate_per_second)
    broadcast.scheduled_at = scheduled_moment(session, data.scheduled_at, now)
    broadcast.updated_at = now


# --- the campaign's life ---------------------------------------------------------------------------------


def create(session: Session, actor: Actor, data: BroadcastIn, now: datetime | None = None) -> Broadcast:
    """A draft: nothing is sent until someone starts it (or it is started on its schedule)."""
    now = now or utcnow()
    broadcast = Broadcast(status="draft", created_by=actor.user_id, created_at=now)
    _apply(session, broadcast, data, now)
    session.add(broadcast)
    session.flush()
    _announce(session, actor, broadcast, "created")
    return broadcast


def update(
    session: Session, actor: Actor, broadcast_id: int, data: BroadcastIn, now: datetime | None = None
) -> Broadcast:
    """Edit a draft or a scheduled broadcast (a scheduled one goes back to waiting for its new time)."""
    now = now or utcnow()
    broadcast = get(session, broadcast_id, lock=True)
    if broadcast.status not in ("draft", "scheduled"):
        raise Conflict(f"The broadcast is {broadcast.status}; only a draft or a scheduled one can be edited")
    _apply(session, broadcast, data, now)
    if broadcast.status == "scheduled" and broadcast.scheduled_at is None:
        broadcast.status = "draft"
    session.flush()
    _announce(session, actor, broadcast, "edited")
    return broadcast


def delete(session: Session, actor: Actor, broadcast_id: int) -> None:
    """Delete a draft; a broadcast that sent anything stays, for its results."""
    broadcast = get(session, broadcast_id, lock=True)
    if broadcast.status != "draft":
        raise Conflict(f"The broadcast is {broadcast.status}; only a draft can be deleted (cancel it instead)")
    record_by(session, actor, "broadcast.deleted", _target(broadcast.id), {"status": "draft"})
    record_event(session, BroadcastChanged(broadcast.id, "deleted", "draft"))
    session.delete(broadcast)
    session.flush()


def _swap(session: Session, broadcast_id: int, allowed: Iterable[str], condition: Any = None, **values: Any) -> bool:
    """The compare-and-set every status change is: True when this caller moved it."""
    statement = sql_update(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.status.in_(tuple(allowed)))
    if condition is not None:
        statement = statement.where(condition)
    moved = session.execute(statement.values(**values).execution_options(synchronize_session=False)).rowcount
    session.flush()
    return bool(moved)


def _lost(session: Session, broadcast: Broadcast, doing: str) -> Conflict:
    """The refusal of the one who lost a race: a locking read sees what the winner committed (InnoDB's
    plain reads would still show this transaction's snapshot)."""
    status = session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast.id).with_for_update())
    return Conflict(f"The broadcast is already {status}; it cannot be {doing} now", field="status")


def start(session: Session, actor: Actor, broadcast_id: int, now: datetime | None = None) -> Broadcast:
    """Start a draft: scheduled if its time is ahead, else the audience is frozen and it runs.

    The engine calls this (as SigDesk) for a scheduled broadcast whose time came. Refused when the template
    is no longer approved or nobody in the audience can receive it; the caller's rollback undoes the swap.
    """
    now = now or utcnow()
    broadcast = get(session, broadcast_id)
    if broadcast.status not in ("draft", "scheduled"):
        raise Conflict(f"The broadcast is already {broadcast.status}; it cannot be started now")
    approved_template(session, broadcast.template_name, broadcast.template_language)
    future = broadcast.scheduled_at is not None and broadcast.scheduled_at > now
    if future:
        if broadcast.status == "scheduled" or not _swap(
            session, broadcast.id, ("draft",), status="scheduled", updated_at=now
        ):
            raise _lost(session, broadcast, "started")
        session.refresh(broadcast)
        _announce(session, actor, broadcast, "scheduled", scheduled_at=broadcast.scheduled_at.isoformat())
        return broadcast
    due = (Broadcast.status == "draft") | (Broadcast.scheduled_at <= now)
    if not _swap(session, broadcast.id, ("draft", "scheduled"), due, status="running", started_at=now, updated_at=now):
        raise _lost(session, broadcast, "started")
    session.refresh(broadcast)
    pending = audience.freeze(session, broadcast, now)
    if pending == 0:
        raise Refused(
            "Nobody in the audience can receive this broadcast (see who is skipped and why)", field="audience"
        )
    _announce(session, actor, broadcast, "started", recipients=broadcast.recipient_count, pending=pending)
    return broadcast


def pause(session: Session, actor: Actor, broadcast_id: int, now: datetime | None = None) -> Broadcast:
    """A person holds the campaign; it waits for a person to resume (a limit pause becomes a person's)."""
    now = now or utcnow()
    broadcast = get(session, broadcast_id)
    held = (Broadcast.status == "running") | (Broadcast.pause_kind != "person")
    values = dict(status="paused", pause_kind="person", pause_reason="Paused by a person", resume_at=None)
    if not _swap(session, broadcast.id, ("running", "paused"), held, updated_at=now, **values):
        raise _lost(session, broadcast, "paused")
    session.refresh(broadcast)
    _announce(session, actor, broadcast, "paused", kind="person")
    return broadcast


def resume(session: Session, actor: Actor, broadcast_id: int, now: datetime | None = None) -> Broadcast:
    """Go on sending. A campaign paused for its template is refused until the template is approved again."""
    now = now or utcnow()
    broadcast = get(session, broadcast_id)
    if broadcast.status == "paused" and broadcast.pause_kind in ("template", "quality"):
        approved_template(session, broadcast.template_name, broadcast.template_language)
    values = dict(status="running", pause_kind=None, pause_reason=None, resume_at=None, updated_at=now)
    if not _swap(session, broadcast.id, ("paused",), **values):
        raise _lost(session, broadcast, "resumed")
    session.refresh(broadcast)
    _announce(session, actor, broadcast, "resumed")
    return broadcast


def cancel(session: Session, actor: Actor, broadcast_id: int, now: datetime | None = None) -> Broadcast:
    """Stop for good: pending recipients are skipped "cancelled", messages still queued are withdrawn;
    a message already on its way to Meta finishes and its recipient keeps the outcome."""
    now = now or utcnow()
    broadcast = get(session, broadcast_id)
    open_statuses = ("draft", "scheduled", "running", "paused")
    values = dict(status="cancelled", finished_at=now, resume_at=None, updated_at=now)
    if not _swap(session, broadcast.id, open_statuses, **values):
        raise _lost(session, broadcast, "cancelled")
    withdrawn = _withdraw(session, broadcast.id, now)
    skipped = session.execute(
        sql_update(BroadcastRecipient)
        .where(BroadcastRecipient.broadcast_id == broadcast.id, BroadcastRecipient.state == "pending")
        .values(state="skipped", reason=CANCELLED, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    session.refresh(broadcast)
    _announce(session, actor, broadcast, "cancelled", skipped=skipped or 0, withdrawn=withdrawn)
    return broadcast


def _withdraw(session: Session, broadcast_id: int, now: datetime) -> int:
    """Messages of the broadcast still queued never leave; their recipients are skipped, not failed."""
    queued = list(
        session.scalars(
            select(Message.id).where(Message.broadcast_id == broadcast_id, Message.status == MessageStatus.QUEUED.value)
        )
    )
    return len(withdraw_messages(session, queued, now))


def withdraw_messages(session: Session, message_ids: list[int], now: datetime | None = None) -> list[int]:
    """Withdraw these never-sent messages of cancelled broadcasts (those already claimed stay) and skip their
    recipients as cancelled; answers the ids withdrawn. The engine calls it too, for what a crash left."""
    withdrawn = outbound.withdraw(session, message_ids) if message_ids else []
    if withdrawn:
        session.execute(
            sql_update(BroadcastRecipient)
            .where(BroadcastRecipient.message_id.in_(withdrawn), BroadcastRecipient.state == "sending")
            .values(state="skipped", reason=CANCELLED, updated_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
    return withdrawn


def pause_by_system(
    session: Session,
    broadcast_id: int,
    kind: str,
    reason: str,
    resume_at: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """The engine holds a running campaign (the messaging limit, Meta's quality signal, a revoked token, the
    template gone). A no-op (False) when it is no longer running: a person paused or cancelled it meanwhile."""
    if kind not in PAUSE_KINDS:
        raise ValueError(f"unknown pause kind {kind!r}")
    now = now or utcnow()
    values = dict(status="paused", pause_kind=kind, pause_reason=reason[:2000], resume_at=resume_at, updated_at=now)
    if not _swap(session, broadcast_id, ("running",), **values):
        return False
    broadcast = get(session, broadcast_id)
    session.refresh(broadcast)
    detail: dict[str, Any] = {"kind": kind, "reason": reason[:500]}
    if resume_at is not None:
        detail["resume_at"] = resume_at.isoformat()
    _announce(session, Actor.system(), broadcast, "paused", **detail)
    return True


def resume_by_system(session: Session, broadcast_id: int, now: datetime | None = None) -> bool:
    """A campaign paused by the messaging limit goes on by itself once the window frees (the engine)."""
    now = now or utcnow()
    values = dict(status="running", pause_kind=None, pause_reason=None, resume_at=None, updated_at=now)
    held = (Broadcast.pause_kind == "limit") & ((Broadcast.resume_at.is_(None)) | (Broadcast.resume_at <= now))
    if not _swap(session, broadcast_id, ("paused",), held, **values):
        return False
    broadcast = get(session, broadcast_id)
    session.refresh(broadcast)
    _announce(session, Actor.system(), broadcast, "resumed", kind="limit")
    return True


def complete(session: Session, broadcast_id: int, now: datetime | None = None) -> bool:
    """Everyone has an outcome (the engine says so); a no-op (False) if it is not running any more."""
    now = now or utcnow()
    if not _swap(session, broadcast_id, ("running",), status="completed", finished_at=now, updated_at=now):
        return False
    broadcast = get(session, broadcast_id)
    session.refresh(broadcast)
    _announce(session, Actor.system(), broadcast, "completed")
    return True


def reopen_by_system(session: Session, broadcast_id: int, now: datetime | None = None) -> bool:
    """A completed campaign runs again because Meta's status webhook said a recipient's message was held back
    by the per-user marketing limit (131049) and that recipient waits for its retry (the followers). A no-op
    (False) unless it is completed: a cancelled campaign stays cancelled."""
    now = now or utcnow()
    if not _swap(session, broadcast_id, ("completed",), status="running", finished_at=None, updated_at=now):
        return False
    broadcast = get(session, broadcast_id)
    session.refresh(broadcast)
    reason = "A recipient's message was held back by Meta's per-user marketing limit; it is retried later"
    _announce(session, Actor.system(), broadcast, "resumed", kind="retry", reason=reason)
    return True


# --- a test send -----------------------------------------------------------------------------------------


def params_for(session: Session, broadcast: Broadcast, contact_id: int | None) -> dict[str, dict[str, str]]:
    """The values a send to this contact carries; a contact missing a value without a fallback is refused."""
    given = read_json(broadcast.variables, dict, "broadcasts.variables") if broadcast.variables else {}
    facts = variables.facts_for(session, [contact_id]).get(contact_id) if contact_id is not None else None
    filled = variables.fill(given, facts or variables.ContactFacts(contact_id=contact_id or 0))
    if isinstance(filled, str):
        raise UserError(f"Cannot fill the template for this contact: {filled}", field="contact_id")
    return filled


def test_send(session: Session, actor: Actor, broadcast_id: int, phone: str, contact_id: int | None = None) -> Message:
    """Send the template once to `phone`, filled as for `contact_id` (default: the contact with that number),
    through the inbox's send path: it shows in that contact's thread and is not paced or counted.

    Only to a number that is already a contact (the owner's own phone, saved once): a test never creates a
    contact, because a contact made by a test would join segments and then get the broadcast for real."""
    broadcast = get(session, broadcast_id)
    template = approved_template(session, broadcast.template_name, broadcast.template_language)
    wa_id = normalise(phone, default_country(session), field="phone")
    receiver = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
    if receiver is None:
        raise Refused(NOT_A_CONTACT, field="phone")
    if contact_id is not None and session.get(Contact, contact_id) is None:
        raise NotFound(f"There is no contact {contact_id}", field="contact_id")
    params = params_for(session, broadcast, contact_id if contact_id is not None else receiver.id)
    try:
        content = templates.template_content(session, template.id, params)
    except UserError as exc:
        if isinstance(exc, placeholders.TemplateMalformed):
            raise
        raise UserError(str(exc), field="contact_id") from None
    conversation_id = outbound.conversation_ids(session, [receiver.id])[receiver.id]
    message = conversations.send(session, actor, conversation_id, "template", content)
    record_by(
        session,
        actor,
        "broadcast.test_sent",
        _target(broadcast.id),
        {"message_id": message.id, "contact_id": receiver.id},
    )
    return message


# --- contacts merged or erased ---------------------------------------------------------------------------


def _standing(row: BroadcastRecipient) -> tuple[bool, bool, bool, int]:
    """How far a row got, to keep the better of one person's two rows: messaged beats not (a row skipped as
    the duplicate of the one that was sent must not win on rank), then not failed, pending beats skipped,
    then the rank."""
    return (
        row.state not in ("pending", "skipped"),
        row.state != "failed",
        row.state != "skipped",
        RECIPIENT_RANK.get(row.state, 0),
    )


MOVED_COLUMNS = (
    "state",
    "reason",
    "error_code",
    "message_id",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "replied_at",
    "reply_message_id",
)


def move_recipients(session: Session, kept_id: int, merged_id: int) -> None:
    """A merge: the merged contact's recipient rows follow it, unless the kept contact is already in that
    broadcast (one person once per broadcast); then the row that got further keeps its results."""
    merged_rows = list(session.scalars(select(BroadcastRecipient).where(BroadcastRecipient.contact_id == merged_id)))
    if not merged_rows:
        return
    kept_rows = {
        row.broadcast_id: row
        for row in session.scalars(
            select(BroadcastRecipient).where(
                BroadcastRecipient.contact_id == kept_id,
                BroadcastRecipient.broadcast_id.in_([row.broadcast_id for row in merged_rows]),
            )
        )
    }
    for row in merged_rows:
        kept = kept_rows.get(row.broadcast_id)
        if kept is None:
            row.contact_id = kept_id
            continue
        if _standing(row) > _standing(kept):
            for column in MOVED_COLUMNS:
                setattr(kept, column, getattr(row, column))
        session.delete(row)
    session.flush()


def erase_recipients(session: Session, contact_id: int) -> None:
    """Anonymising a contact: the number it was frozen with is personal data; the row stays for the counts."""
    session.execute(
        sql_update(BroadcastRecipient)
        .where(BroadcastRecipient.contact_id == contact_id)
        .values(wa_id=literal("erased-", String) + cast(BroadcastRecipient.id, String))
        .execution_options(synchronize_session=False)
    )
