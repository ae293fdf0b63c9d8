"""Settings → Duplicates: the suggested pairs, the review of one (the user picks the winning value of each
conflicting field), the merge and "not duplicates". Plain form posts, CSRF-checked by the app's hook; a
refused form comes back on the page with its message, a done one redirects with a flash that says what
happened."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sigdesk.errors import UserError
from sigdesk.merge import commands, services
from sigdesk.web import acting, db_session, requires, writing
from sigdesk.words import counted

bp = Blueprint("merge", __name__, url_prefix="/admin/duplicates")
PAGE_SIZE = 25


def _id(name: str, source) -> int:
    """A contact id from a form or the query string, or a refusal naming the field."""
    text = (source.get(name) or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 15 or int(text) < 1:
        raise UserError(f"'{name}' must be a contact's id", field=name)
    return int(text)


def _list_page(refused: UserError | None = None):
    session = db_session()
    cursor = request.args.get("cursor", "")
    try:
        found = services.suggestions(session, PAGE_SIZE, cursor or None)
    except UserError:  # a stale or hand-made cursor: start from the top
        found = services.suggestions(session, PAGE_SIZE, None)
    page = render_template(
        "merge/duplicates.html",
        pairs=found.items,
        next_cursor=found.next_cursor,
        partial=found.partial,
        refused=str(refused) if refused else None,
        first_page=not cursor,
    )
    return page, (refused.status if refused else 200)


@bp.get("")
@requires("contacts.merge")
def duplicates():
    return _list_page()


@bp.post("/dismiss")
@requires("contacts.merge")
def dismiss():
    try:
        first, second = _id("first_id", request.form), _id("second_id", request.form)
        with writing() as session:
            commands.dismiss(session, acting(), first, second)
    except UserError as refused:
        return _list_page(refused)
    flash(f"Contacts {first} and {second} are marked as not duplicates; they are no longer suggested.")
    return redirect(url_for("merge.duplicates"))


def _review_page(keep_id: int, merge_id: int, refused: UserError | None = None, typed=None):
    preview = services.preview(db_session(), keep_id, merge_id)
    page = render_template(
        "merge/review.html",
        preview=preview,
        refused=str(refused) if refused else None,
        typed=typed or {},
    )
    return page, (refused.status if refused else 200)


@bp.get("/review")
@requires("contacts.merge")
def review():
    try:
        keep_id, merge_id = _id("keep", request.args), _id("merge", request.args)
        return _review_page(keep_id, merge_id)
    except UserError as refused:
        return _list_page(refused)


@bp.post("/merge")
@requires("contacts.merge")
def merge():
    try:
        keep_id, merge_id = _id("keep", request.form), _id("merge", request.form)
    except UserError as refused:
        return _list_page(refused)
    picks = {name.removeprefix("pick:"): value for name, value in request.form.items() if name.startswith("pick:")}
    try:
        with writing() as session:
            done = commands.merge_contacts(session, acting(), keep_id, merge_id, picks)
    except UserError as refused:
        if refused.status == 404 or refused.field == "merge_id":
            return _list_page(refused)
        return _review_page(keep_id, merge_id, refused, request.form)
    moved = done.moved
    # Names stay out of the flash: it travels in the session cookie, which is signed, not encrypted.
    flash(
        f"Merged contact {merge_id} into contact {keep_id}: {counted(moved['conversations'], 'conversation')}, "
        f"{counted(moved['messages'], 'message')}, {counted(moved['notes'], 'note')}, "
        f"{counted(moved['tags'], 'tag')} and {counted(moved['consent_events'], 'consent event')} moved; "
        f"contact {merge_id} is deleted."
    )
    return redirect(url_for("merge.duplicates"))
