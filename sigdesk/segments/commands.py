"""Changes to segments and bulk changes to contacts, one function each, taking (session, actor, ...);
the caller commits.

Anyone who may see contacts may save a segment (segments.manage: agents too): a segment is a shared view,
not data. Bulk actions act on a selection (ids) or on everything a filter finds, set-based, in batches,
so a hundred thousand contacts take seconds, not minutes. Each run is one audit entry and one
`contacts.bulk_changed` event carrying the action and counts (never the ids): a per-contact event for
each of 100k contacts would flood every outbox consumer. Stage changes still write each contact's
stage history, as a single stage change does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.db import flush_unique, utcnow
from sigdesk.errors import Conflict, UserError
from sigdesk.events.catalogue import ContactDeleted, ContactsBulkChanged, SegmentChanged
from sigdesk.events.outbox import record
from sigdesk.lifecycle.services import clean_name, get_stage, get_tag, name_key
from sigdesk.models import Contact, ContactStage, ContactTag, Conversation, Segment, StageChange, User
from sigdesk.paging import MAX_ID
from sigdesk.roles import can
from sigdesk.segments.services import check_definition, get_segment, where

ACTIONS = ("tag", "untag", "set_stage", "set_owner", "delete")
PERMISSION = {
    "tag": "contacts.classify",
    "untag": "contacts.classify",
    "set_stage": "contacts.classify",
    "set_owner": "contacts.edit",
    "delete": "contacts.delete",
}
MAX_SELECTION = 10_000
BATCH = 500


def _require(actor: Actor, permission: str) -> None:
    if actor.user is not None and not can(actor.user.role, permission):
        raise UserError("Your role does not allow this", status=403)


# --- segments ----------------------------------------------------------------------------------------


def _free(session: Session, name: str, own_id: int | None = None) -> None:
    taken = session.scalar(select(Segment).where(Segment.name_key == name_key(name)))
    if taken is not None and taken.id != own_id:
        raise Conflict(f"There already is a segment '{taken.name}'", field="name")


def _stored(definition: Any) -> str:
    return json.dumps(definition.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


def create_segment(session: Session, actor: Actor, name: object, definition: object) -> Segment:
    """Save a filter under a name the team shares; the definition is checked (and compiled) first."""
    _require(actor, "segments.manage")
    name = clean_name(name, "segment")
    parsed = check_definition(session, definition)
    _free(session, name)
    now = utcnow()
    segment = Segment(
        name=name,
        name_key=name_key(name),
        definition=_stored(parsed),
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(segment)
    flush_unique(session, f"There already is a segment '{name}'", "name")
    record_by(
        session,
        actor,
        "segment.create",
        f"segment {segment.id}",
        {"name": name, "conditions": len(parsed.conditions)},
    )
    record(session, SegmentChanged(segment.id, "created"))
    return segment


def update_segment(
    session: Session, actor: Actor, segment_id: int, name: object = None, definition: object = None
) -> Segment:
    """Rename a segment or change its filter (None: leave as is); unchanged is neither audited nor announced."""
    _require(actor, "segments.manage")
    segment = get_segment(session, segment_id)
    changes: list[str] = []
    detail: dict[str, Any] = {}
    if name is not None:
        name = clean_name(name, "segment")
        if name != segment.name:
            _free(session, name, segment.id)
            detail["name"] = {"from": segment.name, "to": name}
            segment.name, segment.name_key = name, name_key(name)
            changes.append("renamed")
    if definition is not None:
        stored = _stored(check_definition(session, definition))
        if stored != segment.definition:
            segment.definition = stored
            detail["conditions"] = len(json.loads(stored)["conditions"])
            changes.append("redefined")
    if not changes:
        return segment
    segment.updated_at = utcnow()
    flush_unique(session, f"There already is a segment '{segment.name}'", "name")
    record_by(session, actor, "segment.update", f"segment {segment.id}", detail)
    record(session, *(SegmentChanged(segment.id, change) for change in changes))
    return segment


def delete_segment(session: Session, actor: Actor, segment_id: int) -> None:
    """Delete a saved filter; the contacts it found are untouched."""
    _require(actor, "segments.manage")
    segment = get_segment(session, segment_id)
    name = segment.name
    session.delete(segment)
    session.flush()
    record_by(session, actor, "segment.delete", f"segment {segment_id}", {"name": name})
    record(session, SegmentChanged(segment_id, "deleted"))


# --- bulk actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkTarget:
    """Which contacts a bulk action is for: the ids picked (`ids`), or every contact the filter finds
    (`definition`, None: every contact) that matches the search `q`."""

    ids: Sequence[int] | None = None
    definition: object | None = None
    q: str = ""


@dataclass
class BulkResult:
    action: str
    matched: int = 0  # contacts the target named that exist
    done: int = 0  # contacts changed (already tagged, already in the stage... do not count)
    refused: int = 0  # contacts the action would not touch (delete: they have conversations)
    details: dict[str, Any] = field(default_factory=dict)


def _target_ids(session: Session, target: BulkTarget) -> list[int]:
    """The ids to act on, read up front so the action cannot change what the filter finds mid-run."""
    if target.ids is not None:
        ids = _selection(target.ids)
        found: list[int] = []
        for start in range(0, len(ids), BATCH):
            found.extend(session.scalars(select(Contact.id).where(Contact.id.in_(ids[start : start + BATCH]))))
        return sorted(found)
    condition = where(session, target.definition, target.q)
    return list(session.scalars(select(Contact.id).where(condition).order_by(Contact.id)))


def _selection(given: Sequence[int]) -> list[int]:
    if any(isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_ID for item in given):
        raise UserError("'ids' are contact ids", field="ids")
    ids = sorted(set(given))
    if not ids:
        raise UserError("Select at least one contact", field="ids")
    if len(ids) > MAX_SELECTION:
        raise UserError(f"Select at most {MAX_SELECTION} contacts, or act on the filter", field="ids")
    return ids


def _batches(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _owner_id(session: Session, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError("'value' is a user's id (a number) or null", field="value")
    found = session.scalar(select(User.id).where(User.id == value, User.is_active.is_(True)))
    if found is None:
        raise UserError(f"There is no active user {value} to own these contacts", field="value")
    return found


def _object_id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise UserError(f"'value' is the {what}'s id", field="value")
    return value


def bulk_update(
    session: Session,
    actor: Actor,
    target: BulkTarget,
    action: Literal["tag", "untag", "set_stage", "set_owner", "delete"] | str,
    value: object = None,
) -> BulkResult:
    """Tag, untag, set the stage or owner of, or delete many contacts at once.

    `value` is the tag's id (tag, untag), the stage's id or None (set_stage), the user's id or None
    (set_owner), unused for delete. Delete leaves contacts with conversations alone, as deleting one
    does, and counts them as refused.
    """
    if action not in ACTIONS:
        raise UserError(f"'action' is one of {', '.join(ACTIONS)}", field="action")
    _require(actor, PERMISSION[action])
    if target.ids is not None:
        _selection(target.ids)
    result = BulkResult(action)
    detail: dict[str, Any] = {}
    event: dict[str, Any] = {}
    if action in ("tag", "untag"):
        tag = get_tag(session, _object_id(value, "tag"), field="value")
        detail["tag_id"] = event["tag_id"] = tag.id
    elif action == "set_stage":
        stage = get_stage(session, _object_id(value, "stage"), field="value") if value is not None else None
        detail["stage_id"] = event["stage_id"] = stage.id if stage else None
    elif action == "set_owner":
        detail["owner_id"] = event["owner_id"] = _owner_id(session, value)
    ids = _target_ids(session, target)
    result.matched = len(ids)
    now = utcnow()
    for batch in _batches(ids):
        if action == "tag":
            have = set(
                session.scalars(
                    select(ContactTag.contact_id).where(ContactTag.tag_id == tag.id, ContactTag.contact_id.in_(batch))
                )
            )
            rows = [
                {"contact_id": item, "tag_id": tag.id, "created_by": actor.user_id, "created_at": now}
                for item in batch
                if item not in have
            ]
            if rows:
                session.execute(insert(ContactTag), rows)
            result.done += len(rows)
        elif action == "untag":
            result.done += session.execute(
                delete(ContactTag)
                .where(ContactTag.tag_id == tag.id, ContactTag.contact_id.in_(batch))
                .execution_options(synchronize_session=False)
            ).rowcount
        elif action == "set_stage":
            result.done += _set_stage(session, actor, batch, stage, now)
        elif action == "set_owner":
            owner = detail["owner_id"]
            differs = Contact.owner_id.is_(None) if owner is None else Contact.owner_id.is_distinct_from(owner)
            result.done += session.execute(
                update(Contact)
                .where(Contact.id.in_(batch), differs)
                .values(owner_id=owner, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
        else:
            talking = select(Conversation.contact_id).where(Conversation.contact_id.in_(batch))
            kept = set(session.scalars(talking))
            doomed = [item for item in batch if item not in kept]
            result.refused += len(kept)
            if doomed:
                gone = list(session.scalars(select(Contact.id).where(Contact.id.in_(doomed))))
                session.execute(
                    delete(Contact).where(Contact.id.in_(gone)).execution_options(synchronize_session=False)
                )
                result.done += len(gone)
                _forget(session, Contact, set(gone))
                # each one announced as deleting it alone would, so webhooks and integrations hear of it
                for contact_id in gone:
                    record(session, ContactDeleted(contact_id))
    session.flush()
    result.details = detail
    record_by(
        session,
        actor,
        "contacts.bulk",
        "contacts",
        {
            "action": action,
            "target": "selection" if target.ids is not None else "filter",
            "matched": result.matched,
            "done": result.done,
            "refused": result.refused,
            **detail,
        },
    )
    record(session, ContactsBulkChanged(action, result.done, result.refused, **event))
    return result


def _forget(session: Session, model: type, ids: set[int]) -> None:
    """Drop deleted rows from the session, so nothing later reads or writes them back."""
    for item in list(session.identity_map.values()):
        if isinstance(item, model) and item.id in ids:
            session.expunge(item)


def _set_stage(session: Session, actor: Actor, batch: list[int], stage: Any, now: Any) -> int:
    """Move a batch into `stage` (None: out of any), writing each moved contact's stage history."""
    current = dict(
        session.execute(
            select(ContactStage.contact_id, ContactStage.stage_id).where(ContactStage.contact_id.in_(batch))
        ).all()
    )
    target_id = stage.id if stage is not None else None
    moving = [item for item in batch if current.get(item) != target_id]
    if not moving:
        return 0
    if stage is None:
        session.execute(
            delete(ContactStage).where(ContactStage.contact_id.in_(moving)).execution_options(synchronize_session=False)
        )
    else:
        present = [item for item in moving if item in current]
        if present:
            session.execute(
                update(ContactStage)
                .where(ContactStage.contact_id.in_(present))
                .values(stage_id=stage.id, since=now)
                .execution_options(synchronize_session=False)
            )
        fresh = [{"contact_id": item, "stage_id": stage.id, "since": now} for item in moving if item not in current]
        if fresh:
            session.execute(insert(ContactStage), fresh)
    session.execute(
        insert(StageChange),
        [
            {
                "contact_id": item,
                "stage_id": target_id,
                "stage_name": stage.name if stage is not None else None,
                "actor_id": actor.user_id,
                "channel": actor.channel,
                "changed_at": now,
            }
            for item in moving
        ],
    )
    return len(moving)
