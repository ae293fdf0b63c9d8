"""Tags and lifecycle stages in the REST API (/api/v1): the lists, their management (admins), and a
contact's tags, stage and stage history (agents). Every write calls the same command as the pages."""

from __future__ import annotations

from flask import Blueprint, request

from sigdesk.lifecycle import commands, services
from sigdesk.lifecycle.schemas import (
    ContactPath,
    ContactStageData,
    ContactTagList,
    ContactTagPath,
    NewStage,
    NewTag,
    StageEdit,
    StageHistory,
    StageList,
    StagePath,
    StageRemoval,
    StageRemoved,
    StageSetting,
    TagEdit,
    TagList,
    TagPath,
    TagRemoved,
)
from sigdesk.lifecycle.services import StageData, TagData
from sigdesk.openapi import operation
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("lifecycle_api", __name__, url_prefix="/api/v1")


def _body():
    return request.context.json  # type: ignore[attr-defined]


# --- tags ----------------------------------------------------------------------------------------


@bp.get("/tags")
@requires("api.use")
@operation("listTags", (200, TagList))
def list_tags():
    """Every tag, by name"""
    return TagList(items=[TagData.of(tag) for tag in services.list_tags(db_session())])


@bp.post("/tags")
@requires("tags.manage")
@operation("createTag", (201, TagData), json=NewTag, errors=(409,))
def create_tag():
    """Create a tag (admins); a name already taken, whatever its case, is a 409"""
    body: NewTag = _body()
    with writing() as session:
        tag = commands.create_tag(session, acting(), body.name, body.color)
        return TagData.of(tag), 201


@bp.patch("/tags/<tag_id>")
@requires("tags.manage")
@operation("updateTag", (200, TagData), path=TagPath, json=TagEdit, errors=(404, 409))
def update_tag(tag_id: int):
    """Rename or recolour a tag (admins)"""
    body: TagEdit = _body()
    with writing() as session:
        tag = services.get_tag(session, tag_id)
        if body.name is not None:
            tag = commands.rename_tag(session, acting(), tag_id, body.name)
        if body.color is not None:
            tag = commands.recolour_tag(session, acting(), tag_id, body.color)
        return TagData.of(tag)


@bp.delete("/tags/<tag_id>")
@requires("tags.manage")
@operation("deleteTag", (200, TagRemoved), path=TagPath, errors=(404,))
def delete_tag(tag_id: int):
    """Delete a tag (admins); it comes off every contact"""
    with writing() as session:
        removed = commands.delete_tag(session, acting(), tag_id)
    return TagRemoved(id=tag_id, contacts=removed)


@bp.get("/contacts/<contact_id>/tags")
@requires("api.use")
@operation("listContactTags", (200, ContactTagList), path=ContactPath, errors=(404,))
def contact_tags(contact_id: int):
    """A contact's tags, by name"""
    return _tags_of(db_session(), contact_id, False)


@bp.put("/contacts/<contact_id>/tags/<tag_id>")
@requires("contacts.classify")
@operation("tagContact", (200, ContactTagList), path=ContactTagPath, errors=(404,))
def tag_contact(contact_id: int, tag_id: int):
    """Put a tag on a contact (idempotent)"""
    with writing() as session:
        changed = commands.tag_contact(session, acting(), contact_id, tag_id)
        return _tags_of(session, contact_id, changed)


@bp.delete("/contacts/<contact_id>/tags/<tag_id>")
@requires("contacts.classify")
@operation("untagContact", (200, ContactTagList), path=ContactTagPath, errors=(404,))
def untag_contact(contact_id: int, tag_id: int):
    """Take a tag off a contact (idempotent)"""
    with writing() as session:
        changed = commands.untag_contact(session, acting(), contact_id, tag_id)
        return _tags_of(session, contact_id, changed)


def _tags_of(session, contact_id: int, changed: bool) -> ContactTagList:
    services.get_contact_id(session, contact_id)
    tags = services.tags_for(session, [contact_id])[contact_id]
    return ContactTagList(contact_id=contact_id, changed=changed, tags=[TagData.of(tag) for tag in tags])


# --- stages --------------------------------------------------------------------------------------


@bp.get("/stages")
@requires("api.use")
@operation("listStages", (200, StageList))
def list_stages():
    """Every lifecycle stage, in order"""
    return StageList(items=[StageData.of(stage) for stage in services.list_stages(db_session())])


@bp.post("/stages")
@requires("stages.manage")
@operation("createStage", (201, StageData), json=NewStage, errors=(409,))
def create_stage():
    """Add a lifecycle stage (admins), last unless `position` says where"""
    body: NewStage = _body()
    with writing() as session:
        stage = commands.create_stage(session, acting(), body.name, body.position)
        return StageData.of(stage), 201


@bp.patch("/stages/<stage_id>")
@requires("stages.manage")
@operation("updateStage", (200, StageData), path=StagePath, json=StageEdit, errors=(404, 409))
def update_stage(stage_id: int):
    """Rename a stage or move it to another position (admins)"""
    body: StageEdit = _body()
    with writing() as session:
        stage = services.get_stage(session, stage_id)
        if body.name is not None:
            stage = commands.rename_stage(session, acting(), stage_id, body.name)
        if body.position is not None:
            stage = commands.move_stage(session, acting(), stage_id, body.position)
        return StageData.of(stage)


@bp.delete("/stages/<stage_id>")
@requires("stages.manage")
@operation("deleteStage", (200, StageRemoved), path=StagePath, query=StageRemoval, errors=(404, 409))
def delete_stage(stage_id: int):
    """Delete a stage (admins)

    When contacts are in it, give `replacement_id`: they move there, and their history says so.
    Without one, a stage in use is refused (409 naming `replacement_id`).
    """
    query: StageRemoval = request.context.query  # type: ignore[attr-defined]
    with writing() as session:
        moved = commands.delete_stage(session, acting(), stage_id, query.replacement_id)
    return StageRemoved(id=stage_id, contacts=moved)


@bp.put("/contacts/<contact_id>/stage")
@requires("contacts.classify")
@operation("setContactStage", (200, ContactStageData), path=ContactPath, json=StageSetting, errors=(404,))
def set_stage(contact_id: int):
    """Put a contact in a lifecycle stage (null: in none); each change is kept in its stage history"""
    body: StageSetting = _body()
    with writing() as session:
        changed = commands.set_stage(session, acting(), contact_id, body.stage_id)
        stage = services.stages_for(session, [contact_id])[contact_id]
        return ContactStageData(contact_id=contact_id, changed=changed, stage=StageData.of(stage) if stage else None)


@bp.get("/contacts/<contact_id>/stage-history")
@requires("api.use")
@operation("getStageHistory", (200, StageHistory), path=ContactPath, errors=(404,))
def stage_history(contact_id: int):
    """A contact's stage changes, oldest first, with who made each and the time spent in each stage"""
    session = db_session()
    items = services.stage_history(session, contact_id)
    stage = services.stages_for(session, [contact_id])[contact_id]
    return StageHistory(contact_id=contact_id, current=StageData.of(stage) if stage else None, items=items)
