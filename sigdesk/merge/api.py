"""Duplicates and merges in the REST API (/api/v1): the suggested pairs, dismissing one, a merge's preview,
the merge itself (admins: contacts.merge), and what past merges did. Writes call the same commands as the
Duplicates page."""

from __future__ import annotations

from flask import Blueprint, request

from sigdesk.contacts.services import ContactData, get_contact
from sigdesk.merge import commands, services
from sigdesk.merge.schemas import (
    ContactPath,
    Dismissal,
    Dismissed,
    DuplicatePage,
    DuplicatesQuery,
    MergeDone,
    MergeList,
    MergeRequest,
    PreviewQuery,
)
from sigdesk.merge.services import MergeMoves, MergePreview
from sigdesk.openapi import operation
from sigdesk.web import acting, db_session, error_response, requires, writing

bp = Blueprint("merge_api", __name__, url_prefix="/api/v1")


@bp.get("/contacts/duplicates", provide_automatic_options=False)
@requires("contacts.merge")
@operation("listDuplicates", (200, DuplicatePage), query=DuplicatesQuery)
def list_duplicates():
    """Pairs of contacts that look like one customer (admins)

    Each pair says why: the same email, the same phone number once normalised (a national number and
    the international one, Brazil's ninth digit...), or the same name whatever its case, accents and
    word order. Pairs dismissed as not duplicates are left out.
    """
    query: DuplicatesQuery = request.context.query  # type: ignore[attr-defined]
    found = services.suggestions(db_session(), query.limit, query.cursor or None)
    return DuplicatePage(items=found.items, next_cursor=found.next_cursor, partial=found.partial)


@bp.route("/contacts/duplicates", methods=["OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
@requires("api.use")
def duplicates_methods():
    """Only GET: without this, PATCH or DELETE of /contacts/duplicates would reach /contacts/<contact_id>
    and be answered as a contact whose id is not a number (and OPTIONS would list that route's methods)."""
    allow = {"Allow": "GET, HEAD, OPTIONS"}
    if request.method == "OPTIONS":
        return "", 200, allow
    return *error_response(405, "The list of duplicates is read with GET"), allow


@bp.post("/contacts/duplicates/dismiss")
@requires("contacts.merge")
@operation("dismissDuplicates", (200, Dismissed), json=Dismissal, errors=(404, 422))
def dismiss():
    """Say two contacts are not duplicates, so they are no longer suggested (admins)"""
    body: Dismissal = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        changed = commands.dismiss(session, acting(), body.first_id, body.second_id)
    return Dismissed(first_id=body.first_id, second_id=body.second_id, changed=changed)


@bp.get("/contacts/<contact_id>/merge-preview")
@requires("contacts.merge")
@operation("previewMerge", (200, MergePreview), path=ContactPath, query=PreviewQuery, errors=(404, 422))
def preview(contact_id: int):
    """What merging contact `other` into this one would do (admins)

    Per field, both values, whether they conflict and which wins unless picked; what moves; and what else
    happens (the WhatsApp number, two conversations becoming one). Merging a contact into itself is a 422.
    """
    query: PreviewQuery = request.context.query  # type: ignore[attr-defined]
    return services.preview(db_session(), contact_id, query.other)


@bp.post("/contacts/<contact_id>/merge")
@requires("contacts.merge")
@operation("mergeContacts", (200, MergeDone), path=ContactPath, json=MergeRequest, errors=(404, 422))
def merge(contact_id: int):
    """Merge another contact into this one, then delete it (admins)

    `picks` chooses, per field, whose value wins ("keep" or "merge"); fields left out take the preview's
    default. Conversations, messages, notes, tags, stage history and consent events move to this contact.
    The merge is audited and kept (GET /contacts/{contact_id}/merges). Into itself: 422 naming merge_id.
    """
    body: MergeRequest = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        done = commands.merge_contacts(session, acting(), contact_id, body.merge_id, body.picks)
        contact = ContactData.of(get_contact(session, done.kept_id))
    return MergeDone(
        kept_id=done.kept_id,
        merged_id=done.merged_id,
        merge_id=done.merge_id,
        picks=done.picks,  # type: ignore[arg-type]
        fields=list(done.fields),
        moved=MergeMoves(**done.moved),
        contact=contact,
    )


@bp.get("/contacts/<contact_id>/merges")
@requires("contacts.view")
@operation("listMerges", (200, MergeList), path=ContactPath, errors=(404,))
def list_merges(contact_id: int):
    """The merges that made this contact: who merged which contact (as it was) into which, and when"""
    return MergeList(contact_id=contact_id, items=services.merges_of(db_session(), contact_id))
