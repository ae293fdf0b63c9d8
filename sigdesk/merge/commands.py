"""Merging two contacts into one, and saying two contacts are not duplicates; the caller commits.

merge_contacts is one transaction: the kept contact takes the picked value of each field, everything the
merged contact has moves to it (conversations, messages, notes, tags, stage history, consent events, and
whatever other features register with `register_mover`: orders, when they exist), and the merged contact
is deleted. A contact has at most one conversation (conversations.contact_id is unique, and ingest finds
"the conversation of a contact"), so when both have one the merged conversation's messages, notes and
labels join the kept conversation and the merged conversation goes. Full-text search needs no work:
the SQLite FTS5 tables and MariaDB's message_grams are keyed by message id, and messages keep their ids.

What happened is kept in contact_merges (with the merged contact's fields, so it can be described after
it is gone), audited with ids and picks only, and announced as contacts.merged after commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.consent.commands import OPTED_OUT, UNKNOWN
from sigdesk.contacts.fields import COLUMN_OF
from sigdesk.db import utcnow
from sigdesk.errors import NotFound, Refused, UserError
from sigdesk.events.catalogue import (
    ContactChanged,
    ContactsMerged,
    ContactStageChanged,
    ConversationMerged,
    DuplicatesDismissed,
    NoteAdded,
)
from sigdesk.events.outbox import record
from sigdesk.merge.services import (
    CUSTOM,
    STANDARD,
    choices,
    custom_values,
    get_pair,
    moves,
    shown_custom,
)
from sigdesk.models import (
    ConsentEvent,
    Contact,
    ContactField,
    ContactFieldValue,
    ContactMerge,
    ContactStage,
    ContactTag,
    Conversation,
    ConversationLabel,
    ConversationStatus,
    DuplicateDismissal,
    Message,
    Note,
    Reaction,
    Stage,
    StageChange,
)
from sigdesk.roles import can

log = logging.getLogger(__name__)

# Other features' rows that belong to a contact and must follow it: fn(session, kept_id, merged_id), run
# before the merged contact is deleted (its foreign keys cascade). ORDERS: when orders exist, their
# feature registers the function that moves them here (register_mover("orders", move_orders)).
MOVERS: dict[str, Callable[[Session, int, int], None]] = {}
# A conversation's state, most active first: the merged conversation's wins only when it is more active.
ACTIVITY = (
    ConversationStatus.OPEN.value,
    ConversationStatus.PENDING.value,
    ConversationStatus.SNOOZED.value,
    ConversationStatus.RESOLVED.value,
)


def register_mover(name: str, move: Callable[[Session, int, int], None]) -> None:
    """Let a feature move its own rows from the merged contact to the kept one (see MOVERS)."""
    MOVERS[name] = move


@dataclass(frozen=True)
class MergeResult:
    kept_id: int
    merged_id: int
    merge_id: int  # the contact_merges row
    picks: dict[str, str]
    fields: tuple[str, ...]  # the kept contact's fields that changed, by API name
    moved: dict[str, int] = field(default_factory=dict)


def _require(actor: Actor, permission: str) -> None:
    if actor.user is not None and not can(actor.user.role, permission):
        raise UserError("Your role does not allow this", status=403)


def _checked_picks(given: Any, known: set[str]) -> dict[str, str]:
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise UserError("'picks' must map each field to 'keep' or 'merge'", field="picks")
    for name, pick in given.items():
        if name not in known:
            raise UserError(f"'{name}' is not a field of this merge (known: {', '.join(sorted(known))})", field="picks")
        if pick not in ("keep", "merge"):
            raise UserError(f"The pick for '{name}' must be 'keep' or 'merge'", field="picks")
    return dict(given)


def _snapshot(session: Session, merged: Contact) -> dict[str, Any]:
    """The merged contact's own fields, as they were: what 'describe afterwards' shows once it is gone."""
    values: dict[str, Any] = {name: getattr(merged, column) for name, column in COLUMN_OF.items()}
    values["profile_name"] = merged.profile_name
    values["user_id"] = merged.user_id
    values["marketing_consent"] = merged.marketing_consent
    values["created_at"] = merged.created_at.isoformat() if merged.created_at else None
    rows = custom_values(session, merged.id)
    if rows:
        fields = session.scalars(select(ContactField).where(ContactField.id.in_(sorted(rows))))
        values["custom"] = {f.key: shown_custom(f, rows[f.id]) for f in fields}
    stage = session.scalar(select(Stage.name).join(ContactStage).where(ContactStage.contact_id == merged.id))
    values["stage"] = stage
    return values


def merge_contacts(
    session: Session, actor: Actor, keep_id: int, merge_id: int, picks: Mapping[str, str] | None = None
) -> MergeResult:
    """Merge contact `merge_id` into `keep_id` and delete it.

    `picks` says, by field ("name", "email", ..., "stage", "custom.<key>"), whose value wins; a field left
    out takes the preview's default (a value wins over none, else the kept one's). The WhatsApp identity
    (phone and user id) is the kept contact's when it has one, else the merged one's; so is the profile
    name. Times take the earliest first and the latest last; marketing consent follows the latest of
    both contacts' consent events.
    """
    _require(actor, "contacts.merge")
    kept, merged = get_pair(session, keep_id, merge_id)
    for contact in (kept, merged):  # as stored: a core update earlier in the transaction (consent) is not lost
        session.refresh(contact)
    offered = choices(session, kept, merged)
    picks = _checked_picks(picks, {choice.field for choice in offered})
    chosen = {choice.field: picks.get(choice.field, choice.default) for choice in offered}
    counts = moves(session, kept.id, merged.id).model_dump()
    snapshot = _snapshot(session, merged)
    changed: list[str] = []

    # standard fields
    for name in STANDARD:
        column = COLUMN_OF[name]
        if chosen[name] == "merge" and getattr(kept, column) != getattr(merged, column):
            setattr(kept, column, getattr(merged, column))
            changed.append(name)
    _identity(session, kept, merged, changed)
    _times(kept, merged)

    _custom_fields(session, kept.id, merged.id, chosen, changed)
    _tags(session, kept.id, merged.id)
    stage_change = _stage(session, actor, kept.id, merged.id, chosen["stage"])
    if stage_change is not None:
        changed.append("stage")
    if _consent(session, kept, merged):
        changed.append("marketing_consent")
    _conversations(session, actor, kept.id, merged.id)
    for move in MOVERS.values():
        move(session, kept.id, merged.id)

    # merges the merged contact held follow it; then the record of this one
    session.execute(update(ContactMerge).where(ContactMerge.kept_id == merged.id).values(kept_id=kept.id))
    row = ContactMerge(
        kept_id=kept.id,
        into_id=kept.id,
        merged_id=merged.id,
        snapshot=json.dumps(snapshot, ensure_ascii=False, default=str),
        picks=json.dumps(chosen, sort_keys=True),
        actor_id=actor.user_id,
        channel=actor.channel,
        created_at=utcnow(),
    )
    session.add(row)
    kept.updated_at = utcnow()
    session.flush()
    session.execute(
        delete(DuplicateDismissal).where(
            or_(DuplicateDismissal.low_id == merged.id, DuplicateDismissal.high_id == merged.id)
        )
    )
    session.delete(merged)
    session.flush()
    record_by(
        session,
        actor,
        "contact.merged",
        f"contact {kept.id}",
        {"kept_id": kept.id, "merged_id": merge_id, "merge_id": row.id, "picks": chosen, "moved": counts},
    )
    if stage_change is not None:
        record(session, ContactStageChanged(kept.id, *stage_change))
    if changed:
        record(session, ContactChanged(kept.id, tuple(changed)))
    record(session, ContactsMerged(kept.id, merge_id, row.id))
    log.info("contact %s merged into contact %s", merge_id, kept.id)
    return MergeResult(kept.id, merge_id, row.id, chosen, tuple(changed), counts)


def _identity(session: Session, kept: Contact, merged: Contact, changed: list[str]) -> None:
    """The kept contact keeps its WhatsApp identity; one it lacks comes from the merged contact (unique
    columns: the merged contact lets go first)."""
    taken = {}
    for column in ("wa_id", "user_id"):
        if getattr(kept, column) is None and getattr(merged, column) is not None:
            taken[column] = getattr(merged, column)
            setattr(merged, column, None)
    if taken:
        session.flush()
        for column, value in taken.items():
            setattr(kept, column, value)
        if "wa_id" in taken:
            changed.append("phone")
    if not kept.profile_name and merged.profile_name:
        kept.profile_name = merged.profile_name


def _times(kept: Contact, merged: Contact) -> None:
    for column, pick in (
        ("created_at", min),
        ("first_inbound_at", min),
        ("first_outbound_at", min),
        ("last_inbound_at", max),
        ("last_outbound_at", max),
    ):
        values = [value for value in (getattr(kept, column), getattr(merged, column)) if value is not None]
        if values:
            setattr(kept, column, pick(values))


def _custom_fields(session: Session, kept_id: int, merged_id: int, chosen: Mapping[str, str], changed: list) -> None:
    kept_values, merged_values = custom_values(session, kept_id), custom_values(session, merged_id)
    ids = sorted(set(kept_values) | set(merged_values))
    if not ids:
        return
    keys = {
        field_id: key
        for field_id, key in session.execute(select(ContactField.id, ContactField.key).where(ContactField.id.in_(ids)))
    }
    for field_id in ids:
        if chosen.get(CUSTOM + keys[field_id]) != "merge":
            continue
        mine, theirs = kept_values.get(field_id), merged_values.get(field_id)
        if theirs is None:
            if mine is not None:
                session.delete(mine)
                changed.append(CUSTOM + keys[field_id])
            continue
        values = {"text_value": theirs.text_value, "number_value": theirs.number_value, "date_value": theirs.date_value}
        if mine is None:
            session.add(ContactFieldValue(contact_id=kept_id, field_id=field_id, **values))
        elif any(getattr(mine, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(mine, name, value)
        else:
            continue
        changed.append(CUSTOM + keys[field_id])
    session.flush()


def _tags(session: Session, kept_id: int, merged_id: int) -> None:
    """The union: the merged contact's tags the kept one lacks move, with who put them on and when."""
    has = select(ContactTag.tag_id).where(ContactTag.contact_id == kept_id).scalar_subquery()
    session.execute(
        update(ContactTag)
        .where(ContactTag.contact_id == merged_id, ContactTag.tag_id.not_in(has))
        .values(contact_id=kept_id)
        .execution_options(synchronize_session=False)
    )


def _stage(
    session: Session, actor: Actor, kept_id: int, merged_id: int, pick: str
) -> tuple[int | None, int | None] | None:
    """Stage history moves; the picked stage becomes current, and a change of it is a history entry of its
    own. Returns (new stage id, previous stage id) when the kept contact's stage changed."""
    session.execute(
        update(StageChange)
        .where(StageChange.contact_id == merged_id)
        .values(contact_id=kept_id)
        .execution_options(synchronize_session=False)
    )
    if pick != "merge":
        return None
    mine = session.get(ContactStage, kept_id)
    theirs = session.get(ContactStage, merged_id)
    before = mine.stage_id if mine else None
    after = theirs.stage_id if theirs else None
    if before == after:
        return None
    if mine is not None:
        session.delete(mine)
        session.flush()
    now = utcnow()
    if theirs is not None:
        session.add(ContactStage(contact_id=kept_id, stage_id=after, since=theirs.since))
    name = session.scalar(select(Stage.name).where(Stage.id == after)) if after is not None else None
    session.add(
        StageChange(
            contact_id=kept_id,
            stage_id=after,
            stage_name=name,
            actor_id=actor.user_id,
            channel=actor.channel,
            changed_at=now,
        )
    )
    session.flush()
    return after, before


def _consent(session: Session, kept: Contact, merged: Contact) -> bool:
    """Consent events move; the kept contact's state is the latest word of all of them (as record_consent
    keeps it). Without any word on record, an opt-out of either contact stands. Returns whether it changed."""
    session.execute(
        update(ConsentEvent)
        .where(ConsentEvent.contact_id == merged.id)
        .values(contact_id=kept.id)
        .execution_options(synchronize_session=False)
    )
    latest = session.execute(
        select(ConsentEvent.status, ConsentEvent.at)
        .where(ConsentEvent.contact_id == kept.id)
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
        .limit(1)
    ).first()
    before = (kept.marketing_consent, kept.opted_out_marketing)
    if latest is not None:
        kept.marketing_consent = latest.status
        kept.opted_out_marketing = latest.status == OPTED_OUT
        kept.opted_out_changed_at = latest.at
    elif merged.opted_out_marketing and not kept.opted_out_marketing:
        kept.opted_out_marketing = True
        kept.marketing_consent = OPTED_OUT
        kept.opted_out_changed_at = merged.opted_out_changed_at
    elif kept.marketing_consent == UNKNOWN and merged.marketing_consent != UNKNOWN:
        kept.marketing_consent = merged.marketing_consent
    return before != (kept.marketing_consent, kept.opted_out_marketing)


def _conversations(session: Session, actor: Actor, kept_id: int, merged_id: int) -> None:
    """The merged contact's conversation becomes the kept one's; when the kept contact has one already, its
    messages, notes and labels join that one (one conversation per contact) and it goes."""
    session.execute(
        update(Message)
        .where(Message.contact_id == merged_id)
        .values(contact_id=kept_id)
        .execution_options(synchronize_session=False)
    )
    reacted = select(Reaction.target_wamid).where(Reaction.contact_id == kept_id).scalar_subquery()
    session.execute(
        update(Reaction)
        .where(Reaction.contact_id == merged_id, Reaction.target_wamid.not_in(reacted))
        .values(contact_id=kept_id)
        .execution_options(synchronize_session=False)
    )
    theirs = session.scalar(select(Conversation).where(Conversation.contact_id == merged_id))
    if theirs is None:
        return
    mine = session.scalar(select(Conversation).where(Conversation.contact_id == kept_id))
    if mine is None:
        theirs.contact_id = kept_id
        session.flush()
        return
    for model in (Message, Note):
        session.execute(
            update(model)
            .where(model.conversation_id == theirs.id)
            .values(conversation_id=mine.id)
            .execution_options(synchronize_session=False)
        )
    labelled = select(ConversationLabel.label_id).where(ConversationLabel.conversation_id == mine.id).scalar_subquery()
    session.execute(
        update(ConversationLabel)
        .where(ConversationLabel.conversation_id == theirs.id, ConversationLabel.label_id.not_in(labelled))
        .values(conversation_id=mine.id)
        .execution_options(synchronize_session=False)
    )
    for column, pick in (("last_message_at", max), ("last_inbound_at", max), ("created_at", min)):
        values = [value for value in (getattr(mine, column), getattr(theirs, column)) if value is not None]
        if values:
            setattr(mine, column, pick(values))
    mine.unread_count = (mine.unread_count or 0) + (theirs.unread_count or 0)
    if _activity(theirs.status) < _activity(mine.status):
        mine.status, mine.snoozed_until = theirs.status, theirs.snoozed_until
    if mine.assignee_id is None:
        mine.assignee_id = theirs.assignee_id
    gone, gone_assignee = theirs.id, theirs.assignee_id
    session.delete(theirs)
    session.flush()
    # open inboxes showing it reload their list (and lose the thread if it was open), as for any change
    record(session, ConversationMerged(gone, gone_assignee, mine.id))
    note = Note(
        conversation_id=mine.id,
        author_id=actor.user_id,
        body=f"{actor.name} merged contact {merged_id} into this contact; their conversation joined this one.",
        kind="activity",
    )
    note.created_at = utcnow()
    session.add(note)
    session.flush()
    record(session, NoteAdded(mine.id, mine.assignee_id, note.id, "activity"))


def _activity(status: str | None) -> int:
    return ACTIVITY.index(status) if status in ACTIVITY else len(ACTIVITY)


def dismiss(session: Session, actor: Actor, first_id: int, second_id: int) -> bool:
    """Say two contacts are not duplicates, so they stop being suggested; False when already said."""
    _require(actor, "contacts.merge")
    if first_id == second_id:
        raise Refused("A contact is not a duplicate of itself: give two different contacts", field="second_id")
    low, high = sorted((first_id, second_id))
    found = set(session.scalars(select(Contact.id).where(Contact.id.in_((low, high)))))
    for contact_id, name in ((first_id, "first_id"), (second_id, "second_id")):
        if contact_id not in found:
            raise NotFound(f"There is no contact {contact_id}", field=name)
    if session.get(DuplicateDismissal, (low, high)) is not None:
        return False
    session.add(DuplicateDismissal(low_id=low, high_id=high, actor_id=actor.user_id, created_at=utcnow()))
    session.flush()
    record_by(session, actor, "contact.duplicates_dismissed", f"contact {low}", {"low_id": low, "high_id": high})
    record(session, DuplicatesDismissed(low, high))
    return True


# What an erased snapshot keeps: when the merged contact was created; the row keeps the ids, when and who.
KEPT_WHEN_ERASED = ("created_at",)


def erase_snapshots(session: Session, contact_id: int) -> int:
    """Anonymising a contact erases the personal data of the contacts merged into it, kept in their merges'
    snapshots (names, phone, email, notes, custom values...). Registered with the contacts' anonymise, in
    its transaction, so the erasure is all or nothing. Returns how many merges were erased."""
    rows = session.scalars(select(ContactMerge).where(ContactMerge.kept_id == contact_id)).all()
    for row in rows:
        try:
            before = json.loads(row.snapshot)
        except ValueError:
            before = None
        kept = {name: before.get(name) for name in KEPT_WHEN_ERASED} if isinstance(before, dict) else {}
        row.snapshot = json.dumps({**kept, "anonymised": True})
    session.flush()
    return len(rows)
