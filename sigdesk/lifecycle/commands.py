"""Changes to tags and lifecycle stages, one function each, taking (session, actor, ...); the caller commits.

Admins keep the lists (tags.manage, stages.manage); agents put tags on contacts and set their stage
(contacts.classify). Each command checks the actor's role itself, so the CLI and the worker cannot step
past the rule the pages and the API declare. Every change is audited and announced after commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.positions import place
from sigdesk.db import flush_unique, utcnow
from sigdesk.errors import Conflict, UserError
from sigdesk.events.catalogue import ContactStageChanged, ContactTagged, StageChanged, TagChanged
from sigdesk.events.outbox import record
from sigdesk.lifecycle.services import (
    COLORS,
    clean_color,
    clean_name,
    find_stage,
    find_tag,
    get_contact_id,
    get_stage,
    get_tag,
    name_key,
)
from sigdesk.models import ContactStage, ContactTag, Stage, StageChange, Tag
from sigdesk.roles import can


def _require(actor: Actor, permission: str) -> None:
    if actor.user is not None and not can(actor.user.role, permission):
        raise UserError("Your role does not allow this", status=403)


# --- tags ----------------------------------------------------------------------------------------


def _free_name(taken: Tag | Stage | None, kind: str, own_id: int | None = None) -> None:
    """A tag's or stage's name is its own, whatever its case: taken by another one is a 409."""
    if taken is not None and taken.id != own_id:
        raise Conflict(f"There already is a {kind} '{taken.name}'", field="name")


def _rename(session: Session, actor: Actor, row: Tag | Stage, name: object, kind: str, taken: Callable) -> bool:
    """Rename a tag or a stage and audit it; False when the name did not change."""
    name = clean_name(name, kind)
    if name == row.name:
        return False
    _free_name(taken(session, name), kind, row.id)
    before = row.name
    row.name, row.name_key = name, name_key(name)
    flush_unique(session, f"There already is a {kind} '{name}'", "name")
    record_by(session, actor, f"{kind}.rename", f"{kind} {row.id}", {"from": before, "to": name})
    return True


def create_tag(session: Session, actor: Actor, name: object, color: object = None) -> Tag:
    _require(actor, "tags.manage")
    name = clean_name(name, "tag")
    if color is not None:
        color = clean_color(color)
    _free_name(find_tag(session, name), "tag")
    if color is None:
        color = (session.scalar(select(func.count()).select_from(Tag)) or 0) % COLORS
    tag = Tag(name=name, name_key=name_key(name), color=color, created_at=utcnow())
    session.add(tag)
    flush_unique(session, f"There already is a tag '{name}'", "name")
    record_by(session, actor, "tag.create", f"tag {tag.id}", {"name": name, "color": color})
    record(session, TagChanged(tag.id, "created"))
    return tag


def rename_tag(session: Session, actor: Actor, tag_id: int, name: object) -> Tag:
    _require(actor, "tags.manage")
    tag = get_tag(session, tag_id)
    if _rename(session, actor, tag, name, "tag", find_tag):
        record(session, TagChanged(tag.id, "renamed"))
    return tag


def recolour_tag(session: Session, actor: Actor, tag_id: int, color: object) -> Tag:
    _require(actor, "tags.manage")
    tag = get_tag(session, tag_id)
    color = clean_color(color)
    if color == tag.color:
        return tag
    before = tag.color
    tag.color = color
    session.flush()
    record_by(session, actor, "tag.recolour", f"tag {tag.id}", {"from": before, "to": color})
    record(session, TagChanged(tag.id, "recoloured"))
    return tag


def delete_tag(session: Session, actor: Actor, tag_id: int) -> int:
    """Delete the tag and take it off every contact; returns how many contacts had it."""
    _require(actor, "tags.manage")
    tag = get_tag(session, tag_id)
    removed = session.execute(delete(ContactTag).where(ContactTag.tag_id == tag.id)).rowcount
    name = tag.name
    session.delete(tag)
    session.flush()
    record_by(session, actor, "tag.delete", f"tag {tag_id}", {"name": name, "contacts": removed})
    record(session, TagChanged(tag_id, "deleted"))
    return removed


def tag_contact(session: Session, actor: Actor, contact_id: int, tag_id: int, on: bool = True) -> bool:
    """Put the tag on the contact (or take it off); False when it already was so, which is neither audited
    nor announced."""
    _require(actor, "contacts.classify")
    contact_id = get_contact_id(session, contact_id)
    tag = get_tag(session, tag_id)
    exists = session.get(ContactTag, (contact_id, tag.id))
    if on and exists is None:
        session.add(ContactTag(contact_id=contact_id, tag_id=tag.id, created_by=actor.user_id, created_at=utcnow()))
    elif not on and exists is not None:
        session.delete(exists)
    else:
        return False
    flush_unique(session, "The contact already has that tag", "tag_id")
    record_by(session, actor, "contact.tag" if on else "contact.untag", f"contact {contact_id}", {"tag_id": tag.id})
    record(session, ContactTagged(contact_id, tag.id, on))
    return True


def untag_contact(session: Session, actor: Actor, contact_id: int, tag_id: int) -> bool:
    return tag_contact(session, actor, contact_id, tag_id, on=False)


# --- stages --------------------------------------------------------------------------------------


def _ordered(session: Session) -> list[Stage]:
    return list(session.scalars(select(Stage).order_by(Stage.position, Stage.id)))


def create_stage(session: Session, actor: Actor, name: object, position: int | None = None) -> Stage:
    """A new stage, last in the lifecycle unless `position` (1 first) says where."""
    _require(actor, "stages.manage")
    name = clean_name(name, "stage")
    _free_name(find_stage(session, name), "stage")
    stages = _ordered(session)
    stage = Stage(name=name, name_key=name_key(name), position=len(stages) + 1, created_at=utcnow())
    session.add(stage)
    flush_unique(session, f"There already is a stage '{name}'", "name")
    if position is not None:
        place(stages, stage, position)
    record_by(session, actor, "stage.create", f"stage {stage.id}", {"name": name, "position": stage.position})
    record(session, StageChanged(stage.id, "created"))
    return stage


def rename_stage(session: Session, actor: Actor, stage_id: int, name: object) -> Stage:
    _require(actor, "stages.manage")
    stage = get_stage(session, stage_id)
    if _rename(session, actor, stage, name, "stage", find_stage):
        record(session, StageChanged(stage.id, "renamed"))
    return stage


def move_stage(session: Session, actor: Actor, stage_id: int, position: object) -> Stage:
    """Move a stage to `position` (1 first); the others keep their order around it."""
    _require(actor, "stages.manage")
    stage = get_stage(session, stage_id)
    before = stage.position
    place([item for item in _ordered(session) if item.id != stage.id], stage, position)
    session.flush()
    if stage.position != before:
        record_by(session, actor, "stage.move", f"stage {stage.id}", {"from": before, "to": stage.position})
        record(session, StageChanged(stage.id, "moved"))
    return stage


def reorder_stages(session: Session, actor: Actor, stage_ids: Sequence[int]) -> list[Stage]:
    """Put every stage in the order given; the list names each stage once."""
    _require(actor, "stages.manage")
    stages = {stage.id: stage for stage in _ordered(session)}
    if len(stage_ids) != len(set(stage_ids)) or set(stage_ids) != set(stages):
        raise UserError("'stage_ids' names every stage once, in the new order", field="stage_ids")
    moved = []
    for number, stage_id in enumerate(stage_ids, start=1):
        if stages[stage_id].position != number:
            stages[stage_id].position = number
            moved.append(stage_id)
    session.flush()
    if moved:
        record_by(session, actor, "stage.reorder", "stages", {"order": list(stage_ids)})
        record(session, *(StageChanged(stage_id, "moved") for stage_id in moved))
    return [stages[stage_id] for stage_id in stage_ids]


def delete_stage(session: Session, actor: Actor, stage_id: int, replacement_id: int | None = None) -> int:
    """Delete a stage. Contacts in it move to the replacement stage (their history says so); without a
    replacement a stage in use is refused. Returns how many contacts moved."""
    _require(actor, "stages.manage")
    stage = get_stage(session, stage_id)
    contact_ids = list(
        session.scalars(select(ContactStage.contact_id).where(ContactStage.stage_id == stage.id).order_by("contact_id"))
    )
    replacement = None
    if replacement_id is not None:
        replacement = get_stage(session, replacement_id, field="replacement_id")
        if replacement.id == stage.id:
            raise UserError("Choose another stage as the replacement", field="replacement_id")
    if contact_ids and replacement is None:
        raise Conflict(
            f"{len(contact_ids)} contact(s) are in the stage '{stage.name}': choose a replacement stage for them",
            field="replacement_id",
        )
    if contact_ids and replacement is not None:
        now = utcnow()
        session.execute(
            insert(StageChange).from_select(
                ["contact_id", "stage_id", "stage_name", "actor_id", "channel", "changed_at"],
                select(
                    ContactStage.contact_id,
                    literal(replacement.id),
                    literal(replacement.name),
                    literal(actor.user_id),
                    literal(actor.channel),
                    literal(now, StageChange.__table__.c.changed_at.type),
                ).where(ContactStage.stage_id == stage.id),
            )
        )
        session.execute(
            update(ContactStage)
            .where(ContactStage.stage_id == stage.id)
            .values(stage_id=replacement.id, since=now)
            .execution_options(synchronize_session=False)
        )
    # The history keeps the stage's name; the id goes, so a later stage never inherits these entries.
    session.execute(
        update(StageChange)
        .where(StageChange.stage_id == stage.id)
        .values(stage_id=None)
        .execution_options(synchronize_session=False)
    )
    name = stage.name
    session.delete(stage)
    session.flush()
    for number, item in enumerate(_ordered(session), start=1):
        item.position = number
    session.flush()
    record_by(
        session,
        actor,
        "stage.delete",
        f"stage {stage_id}",
        {"name": name, "contacts": len(contact_ids), "replacement_id": replacement.id if replacement else None},
    )
    record(session, StageChanged(stage_id, "deleted", replacement.id if replacement else None))
    if replacement is not None:
        record(session, *(ContactStageChanged(contact_id, replacement.id, stage_id) for contact_id in contact_ids))
    return len(contact_ids)


def set_stage(session: Session, actor: Actor, contact_id: int, stage_id: int | None) -> bool:
    """Put the contact in a stage (None: in none), kept in its history with who and when; False when it
    already was there, which leaves no history entry."""
    _require(actor, "contacts.classify")
    contact_id = get_contact_id(session, contact_id)
    stage = get_stage(session, stage_id) if stage_id is not None else None
    current = session.get(ContactStage, contact_id)
    previous_id = current.stage_id if current is not None else None
    if previous_id == (stage.id if stage else None):
        return False
    now = utcnow()
    if stage is None:
        session.delete(current)
    elif current is None:
        session.add(ContactStage(contact_id=contact_id, stage_id=stage.id, since=now))
    else:
        current.stage_id, current.since = stage.id, now
    session.add(
        StageChange(
            contact_id=contact_id,
            stage_id=stage.id if stage else None,
            stage_name=stage.name if stage else None,
            actor_id=actor.user_id,
            channel=actor.channel,
            changed_at=now,
        )
    )
    flush_unique(session, "The contact's stage changed at the same time; try again", "stage_id")
    record_by(
        session,
        actor,
        "contact.stage",
        f"contact {contact_id}",
        {"stage_id": stage.id if stage else None, "previous_stage_id": previous_id},
    )
    record(session, ContactStageChanged(contact_id, stage.id if stage else None, previous_id))
    return True


# --- by name (for the contact record's `tags` and `stage` fields, and imports) ----------------------


def set_tags_by_name(session: Session, actor: Actor, contact_id: int, names: Sequence[str]) -> list[str]:
    """Give the contact exactly these tags, named as the admins did (any case); an unknown name refuses
    the whole change, naming `tags`. Returns the tags' names as stored."""
    _require(actor, "contacts.classify")
    wanted: dict[int, Tag] = {}
    for name in names:
        found = find_tag(session, name) if isinstance(name, str) and name.strip() else None
        if found is None:
            raise UserError(f"There is no tag '{name}' (admins add tags in Settings → Tags)", field="tags")
        wanted[found.id] = found
    have = set(session.scalars(select(ContactTag.tag_id).where(ContactTag.contact_id == contact_id)))
    for tag_id in sorted(have - set(wanted)):
        tag_contact(session, actor, contact_id, tag_id, on=False)
    for tag_id in sorted(set(wanted) - have):
        tag_contact(session, actor, contact_id, tag_id, on=True)
    return [tag.name for tag in wanted.values()]


def set_stage_by_name(session: Session, actor: Actor, contact_id: int, name: str | None) -> bool:
    """Put the contact in the stage of this name (any case; None or empty: in none), refusing an unknown
    name with a message naming `stage`."""
    stage = None
    if name is not None and (not isinstance(name, str) or name.strip()):
        stage = find_stage(session, name) if isinstance(name, str) else None
        if stage is None:
            raise UserError(f"There is no stage '{name}' (admins keep the list in Settings → Stages)", field="stage")
    return set_stage(session, actor, contact_id, stage.id if stage else None)
