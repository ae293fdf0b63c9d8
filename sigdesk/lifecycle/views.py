"""Settings → Tags and Settings → Stages: the admins' pages for the two lists.

Plain form posts (CSRF-checked by the app's hook). A refused form comes back on the page with the message
by that form and what was typed; a done one redirects back with a flash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sigdesk.errors import UserError
from sigdesk.lifecycle import commands, services
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("lifecycle", __name__, url_prefix="/admin")


def _number(name: str, optional: bool = False) -> int | None:
    """A whole number typed into a form, or a refusal naming the field."""
    text = request.form.get(name, "").strip()
    if optional and not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise UserError(f"'{name}' must be a whole number", field=name)
    return int(text)


def _page(template: str, refused: UserError | None, form: str, **context: Any):
    page = render_template(
        template,
        refused={"form": form, "message": str(refused), "field": refused.field, "typed": request.form}
        if refused
        else None,
        **context,
    )
    return page, (refused.status if refused else 200)


def _post(page: Callable[[UserError | None, str], Any], form: str, change: Callable, done: Callable[[Any], str]):
    """Run a form's change in one transaction; refused, show the page again with the message by `form`."""
    try:
        with writing() as session:
            result = change(session)
            message = done(result)
    except UserError as refused:
        return page(refused, form)
    flash(message)
    return None


# --- tags ----------------------------------------------------------------------------------------


def _tags_page(refused: UserError | None = None, form: str = ""):
    session = db_session()
    return _page(
        "lifecycle/tags.html",
        refused,
        form,
        tags=services.list_tags(session),
        usage=services.tag_usage(session),
        colors=range(services.COLORS),
    )


@bp.get("/tags")
@requires("tags.manage")
def tags():
    return _tags_page()


@bp.post("/tags")
@requires("tags.manage")
def create_tag():
    refused = _post(
        _tags_page,
        "tag-new",
        lambda session: commands.create_tag(
            session, acting(), request.form.get("name", ""), _number("color", optional=True)
        ),
        lambda tag: f"Added the tag {tag.name}.",
    )
    return refused or redirect(url_for("lifecycle.tags"))


@bp.post("/tags/<int:tag_id>")
@requires("tags.manage")
def update_tag(tag_id: int):
    def change(session):
        commands.rename_tag(session, acting(), tag_id, request.form.get("name", ""))
        return commands.recolour_tag(session, acting(), tag_id, _number("color"))

    refused = _post(_tags_page, f"tag-{tag_id}", change, lambda tag: f"Saved the tag {tag.name}.")
    return refused or redirect(url_for("lifecycle.tags"))


@bp.post("/tags/<int:tag_id>/delete")
@requires("tags.manage")
def delete_tag(tag_id: int):
    refused = _post(
        _tags_page,
        f"tag-{tag_id}",
        lambda session: commands.delete_tag(session, acting(), tag_id),
        lambda count: f"Deleted the tag (it was on {count} contact(s)).",
    )
    return refused or redirect(url_for("lifecycle.tags"))


# --- stages --------------------------------------------------------------------------------------


def _stages_page(refused: UserError | None = None, form: str = ""):
    session = db_session()
    return _page(
        "lifecycle/stages.html",
        refused,
        form,
        stages=services.list_stages(session),
        usage=services.stage_usage(session),
    )


@bp.get("/stages")
@requires("stages.manage")
def stages():
    return _stages_page()


@bp.post("/stages")
@requires("stages.manage")
def create_stage():
    refused = _post(
        _stages_page,
        "stage-new",
        lambda session: commands.create_stage(session, acting(), request.form.get("name", "")),
        lambda stage: f"Added the stage {stage.name}.",
    )
    return refused or redirect(url_for("lifecycle.stages"))


@bp.post("/stages/<int:stage_id>")
@requires("stages.manage")
def update_stage(stage_id: int):
    def change(session):
        stage = commands.rename_stage(session, acting(), stage_id, request.form.get("name", ""))
        position = _number("position", optional=True)
        return commands.move_stage(session, acting(), stage_id, position) if position is not None else stage

    refused = _post(_stages_page, f"stage-{stage_id}", change, lambda stage: f"Saved the stage {stage.name}.")
    return refused or redirect(url_for("lifecycle.stages"))


@bp.post("/stages/<int:stage_id>/move")
@requires("stages.manage")
def move_stage(stage_id: int):
    refused = _post(
        _stages_page,
        f"stage-{stage_id}",
        lambda session: commands.move_stage(session, acting(), stage_id, _number("position")),
        lambda stage: f"Moved the stage {stage.name} to position {stage.position}.",
    )
    return refused or redirect(url_for("lifecycle.stages"))


@bp.post("/stages/<int:stage_id>/delete")
@requires("stages.manage")
def delete_stage(stage_id: int):
    refused = _post(
        _stages_page,
        f"stage-delete-{stage_id}",
        lambda session: commands.delete_stage(session, acting(), stage_id, _number("replacement_id", optional=True)),
        lambda moved: (
            f"Deleted the stage; {moved} contact(s) moved to the replacement." if moved else "Deleted the stage."
        ),
    )
    return refused or redirect(url_for("lifecycle.stages"))
