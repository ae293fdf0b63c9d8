"""Reading tags and lifecycle stages: the lists, what contacts carry (batched, one query each), and a
contact's stage history with the time spent in each stage. Also the rules a name must follow, shared by
the commands and the pages."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from sigdesk.db import utcnow
from sigdesk.errors import NotFound, UserError
from sigdesk.labels.services import LABEL_COLORS
from sigdesk.models import Contact, ContactStage, ContactTag, Stage, StageChange, Tag, User

MAX_NAME = 64
COLORS = LABEL_COLORS  # tags use the conversation labels' palette (.l0 to .l7)
DEFAULT_STAGES = ("New lead", "Qualified", "Customer", "Repeat customer", "Lost")


def name_key(name: str) -> str:
    """What makes two names the same: their case-folded text (so "VIP" and "vip" clash on every database)."""
    return hashlib.sha256(name.strip().casefold().encode("utf-8")).hexdigest()


def clean_name(name: object, what: str, field: str = "name") -> str:
    if not isinstance(name, str):
        raise UserError(f"Give the {what}'s name", field=field)
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise UserError(f"A {what} name is 1 to {MAX_NAME} characters", field=field)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") for char in name):
        raise UserError(f"A {what} name is one line of visible text", field=field)
    return name


def clean_color(color: object) -> int:
    if not isinstance(color, int) or isinstance(color, bool) or not 0 <= color < COLORS:
        raise UserError(f"'color' is one of the palette's colours, 0 to {COLORS - 1}", field="color")
    return color


# --- tags ----------------------------------------------------------------------------------------


class TagData(BaseModel):
    id: int
    name: str
    color: int = Field(description=f"A colour of the labels' palette, 0 to {COLORS - 1}")

    @classmethod
    def of(cls, tag: Tag) -> "TagData":
        return cls(id=tag.id, name=tag.name, color=tag.color)


def _by_name(tag: Tag) -> tuple[str, int]:
    return tag.name.casefold(), tag.id


def list_tags(session: Session) -> list[Tag]:
    """Every tag by name, whatever its case (the same order on SQLite and MySQL)."""
    return sorted(session.scalars(select(Tag)), key=_by_name)


def get_tag(session: Session, tag_id: int, field: str = "tag_id") -> Tag:
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise NotFound(f"There is no tag {tag_id}", field=field)
    return tag


def find_tag(session: Session, name: str) -> Tag | None:
    return session.scalar(select(Tag).where(Tag.name_key == name_key(name)))


def get_contact_id(session: Session, contact_id: int) -> int:
    found = session.scalar(select(Contact.id).where(Contact.id == contact_id))
    if found is None:
        raise NotFound(f"There is no contact {contact_id}", field="contact_id")
    return found


def tags_for(session: Session, contact_ids: Iterable[int]) -> dict[int, list[Tag]]:
    """Each contact's tags by name (one query); contacts without tags get an empty list."""
    ids = sorted(set(contact_ids))
    found: dict[int, list[Tag]] = {contact_id: [] for contact_id in ids}
    if ids:
        rows = session.execute(
            select(ContactTag.contact_id, Tag)
            .join(Tag, Tag.id == ContactTag.tag_id)
            .where(ContactTag.contact_id.in_(ids))
        )
        for contact_id, tag in rows:
            found[contact_id].append(tag)
        for tags in found.values():
            tags.sort(key=_by_name)
    return found


def tag_names_for(session: Session, contact_ids: Iterable[int]) -> dict[int, list[str]]:
    return {contact_id: [tag.name for tag in tags] for contact_id, tags in tags_for(session, contact_ids).items()}


def tag_usage(session: Session) -> dict[int, int]:
    rows = session.execute(select(ContactTag.tag_id, func.count()).group_by(ContactTag.tag_id))
    return {tag_id: count for tag_id, count in rows}


def tagged(name: str) -> ColumnElement[bool]:
    """Where a contact has the tag of this name (whatever its case): a condition for contact queries."""
    return Contact.id.in_(
        select(ContactTag.contact_id).join(Tag, Tag.id == ContactTag.tag_id).where(Tag.name_key == name_key(name))
    )


# --- stages --------------------------------------------------------------------------------------


class StageData(BaseModel):
    id: int
    name: str
    position: int = Field(description="Where the stage is in the lifecycle, 1 first")

    @classmethod
    def of(cls, stage: Stage) -> "StageData":
        return cls(id=stage.id, name=stage.name, position=stage.position)


def list_stages(session: Session) -> list[Stage]:
    return list(session.scalars(select(Stage).order_by(Stage.position, Stage.id)))


def get_stage(session: Session, stage_id: int, field: str = "stage_id") -> Stage:
    stage = session.get(Stage, stage_id)
    if stage is None:
        raise NotFound(f"There is no stage {stage_id}", field=field)
    return stage


def find_stage(session: Session, name: str) -> Stage | None:
    return session.scalar(select(Stage).where(Stage.name_key == name_key(name)))


def stages_for(session: Session, contact_ids: Iterable[int]) -> dict[int, Stage | None]:
    """Each contact's current stage (one query); None for a contact in no stage."""
    ids = sorted(set(contact_ids))
    found: dict[int, Stage | None] = dict.fromkeys(ids)
    if ids:
        rows = session.execute(
            select(ContactStage.contact_id, Stage)
            .join(Stage, Stage.id == ContactStage.stage_id)
            .where(ContactStage.contact_id.in_(ids))
        )
        for contact_id, stage in rows:
            found[contact_id] = stage
    return found


def stage_names_for(session: Session, contact_ids: Iterable[int]) -> dict[int, str | None]:
    return {
        contact_id: (stage.name if stage else None) for contact_id, stage in stages_for(session, contact_ids).items()
    }


def stage_usage(session: Session) -> dict[int, int]:
    rows = session.execute(select(ContactStage.stage_id, func.count()).group_by(ContactStage.stage_id))
    return {stage_id: count for stage_id, count in rows}


def in_stage(name: str | None) -> ColumnElement[bool]:
    """Where a contact is in the stage of this name (None: in no stage): a condition for contact queries."""
    if name is None:
        return Contact.id.not_in(select(ContactStage.contact_id))
    return Contact.id.in_(
        select(ContactStage.contact_id)
        .join(Stage, Stage.id == ContactStage.stage_id)
        .where(Stage.name_key == name_key(name))
    )


class StagePeriod(BaseModel):
    """A stretch of a contact's lifecycle: the stage entered, by whom, and how long the contact stayed."""

    stage_id: int | None = Field(description="The stage entered; null when it was deleted since, or for none")
    stage: str | None = Field(
        description="The stage's name (as it was, if the stage is gone); null: the contact left its stage for none"
    )
    entered_at: datetime
    left_at: datetime | None = Field(description="When the next change came; null for the current stage")
    seconds: int = Field(description="Time in the stage so far, in whole seconds")
    by_user_id: int | None
    by: str = Field(description="Who changed it: a team member's name, or SigDesk")
    channel: str = Field(description="How: web, api, cli, worker...")


def stage_history(session: Session, contact_id: int, now: datetime | None = None) -> list[StagePeriod]:
    """The contact's stage changes, oldest first, each with the time spent in it until the next one."""
    get_contact_id(session, contact_id)
    rows = session.execute(
        select(StageChange, Stage.name, User.name)
        .outerjoin(Stage, Stage.id == StageChange.stage_id)
        .outerjoin(User, User.id == StageChange.actor_id)
        .where(StageChange.contact_id == contact_id)
        .order_by(StageChange.changed_at, StageChange.id)
    ).all()
    now = now or utcnow()
    periods = []
    for index, (change, current_name, user_name) in enumerate(rows):
        left = rows[index + 1][0].changed_at if index + 1 < len(rows) else None
        spent = (left or now) - change.changed_at
        periods.append(
            StagePeriod(
                stage_id=change.stage_id,
                stage=current_name or change.stage_name,
                entered_at=change.changed_at,
                left_at=left,
                seconds=max(0, int(spent / timedelta(seconds=1))),
                by_user_id=change.actor_id,
                by=user_name or "SigDesk",
                channel=change.channel,
            )
        )
    return periods
