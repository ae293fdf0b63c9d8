"""Segments in the REST API (/api/v1): saved filters the team shares, their live counts and contacts.
Every write calls the same command as the pages."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.exceptions import MethodNotAllowed

from sigdesk.openapi import operation
from sigdesk.segments import commands, services
from sigdesk.errors import UserError
from sigdesk.segments.schemas import (
    BulkDone,
    BulkRequest,
    ContactFilter,
    ContactPage,
    Count,
    NewSegment,
    SegmentContactsQuery,
    SegmentEdit,
    SegmentList,
    SegmentPath,
)
from sigdesk.segments.services import SegmentData
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("segments_api", __name__, url_prefix="/api/v1")


def _body():
    return request.context.json  # type: ignore[attr-defined]


@bp.get("/segments")
@requires("contacts.view")
@operation("listSegments", (200, SegmentList))
def list_segments():
    """Every saved segment, by name"""
    return SegmentList(items=[SegmentData.of(segment) for segment in services.list_segments(db_session())])


@bp.post("/segments")
@requires("segments.manage")
@operation("createSegment", (201, SegmentData), json=NewSegment, errors=(409, 422))
def create_segment():
    """Save a filter as a segment the team shares

    A condition the filter cannot use (unknown field, an op its type has no use for, a value of the
    wrong kind, a tag or custom field that does not exist) is a 422 naming it, such as `conditions[2].value`.
    """
    body: NewSegment = _body()
    with writing() as session:
        segment = commands.create_segment(session, acting(), body.name, body.definition)
        return SegmentData.of(segment), 201


@bp.get("/segments/<segment_id>")
@requires("contacts.view")
@operation("getSegment", (200, SegmentData), path=SegmentPath, errors=(404,))
def get_segment(segment_id: int):
    """A segment and its filter"""
    return SegmentData.of(services.get_segment(db_session(), segment_id))


@bp.patch("/segments/<segment_id>")
@requires("segments.manage")
@operation("updateSegment", (200, SegmentData), path=SegmentPath, json=SegmentEdit, errors=(404, 409, 422))
def update_segment(segment_id: int):
    """Rename a segment or change its filter"""
    body: SegmentEdit = _body()
    with writing() as session:
        segment = commands.update_segment(session, acting(), segment_id, body.name, body.definition)
        return SegmentData.of(segment)


@bp.delete("/segments/<segment_id>")
@requires("segments.manage")
@operation("deleteSegment", (204, None), path=SegmentPath, errors=(404,))
def delete_segment(segment_id: int):
    """Delete a segment; its contacts are untouched"""
    with writing() as session:
        commands.delete_segment(session, acting(), segment_id)
    return "", 204


@bp.get("/segments/<segment_id>/count")
@requires("contacts.view")
@operation("countSegment", (200, Count), path=SegmentPath, errors=(404, 422))
def count_segment(segment_id: int):
    """How many contacts the segment finds now"""
    session = db_session()
    return Count(count=services.count_contacts(session, services.definition_of(session, segment_id)))


@bp.get("/segments/<segment_id>/contacts")
@requires("contacts.view")
@operation("listSegmentContacts", (200, ContactPage), path=SegmentPath, query=SegmentContactsQuery, errors=(404, 422))
def segment_contacts(segment_id: int):
    """The contacts the segment finds, a page at a time, sorted as `sort` says"""
    query: SegmentContactsQuery = request.context.query  # type: ignore[attr-defined]
    session = db_session()
    definition = services.definition_of(session, segment_id)
    found = services.find_contacts(session, definition, query.q, query.sort, query.cursor or None, query.limit)
    return ContactPage(items=found.items, next_cursor=found.next_cursor)


# --- the contacts list's live count and bulk actions ------------------------------------------------------


@bp.get("/contacts/count", provide_automatic_options=False)
@requires("contacts.view")
@operation("countContacts", (200, Count), query=ContactFilter, errors=(404, 422))
def count_contacts():
    """How many contacts the contacts list's search and filters find (the same query as listContacts)"""
    query: ContactFilter = request.context.query  # type: ignore[attr-defined]
    session = db_session()
    definitions = services.filters_of(session, query.tag, query.stage, query.consent, query.segment, query.filter)
    return Count(count=services.count_contacts(session, definitions, query.q))


@bp.post("/contacts/bulk", provide_automatic_options=False)
@requires("contacts.classify")
@operation("bulkUpdateContacts", (200, BulkDone), json=BulkRequest, errors=(404, 422))
def bulk_update():
    """Tag, untag, set the stage or owner of, or delete many contacts

    Acts on `ids` when given, else on every contact that `segment`, `filter` and `q` find together (none
    of them: every contact). Delete needs the contacts.delete permission and `confirm: true`, and leaves
    contacts with conversations alone (counted as refused).
    """
    body: BulkRequest = _body()
    if body.action == "delete" and not body.confirm:
        raise UserError("Deleting contacts cannot be undone: send confirm: true", status=422, field="confirm")
    if body.ids is not None and (body.segment is not None or body.filter is not None or body.q):
        raise UserError("Give either ids or a filter (segment, filter, q), not both", field="ids")
    with writing() as session:
        definitions = services.filters_of(session, segment=body.segment, filter=body.filter)
        target = commands.BulkTarget(ids=body.ids, definition=definitions, q=body.q)
        done = commands.bulk_update(session, acting(), target, body.action, body.value)
    return BulkDone(action=done.action, matched=done.matched, done=done.done, refused=done.refused)


# /contacts/<contact_id> takes GET, PATCH and DELETE: without these, PATCH /contacts/count would reach it as
# contact "count" and answer 400 rather than say the method is not taken here.
OTHER_METHODS = {"/api/v1/contacts/count": ["GET", "HEAD", "OPTIONS"], "/api/v1/contacts/bulk": ["POST", "OPTIONS"]}


@bp.route("/contacts/count", methods=["OPTIONS", "POST", "PUT", "PATCH", "DELETE"], endpoint="contacts_count_other")
@bp.route("/contacts/bulk", methods=["OPTIONS", "GET", "PUT", "PATCH", "DELETE"], endpoint="contacts_bulk_other")
@requires("api.use")
def not_taken_here():
    """405 naming the methods the address takes (and OPTIONS naming them, not the contact route's)"""
    if request.method == "OPTIONS":
        return "", 200, {"Allow": ", ".join(OTHER_METHODS[request.path])}
    raise MethodNotAllowed(valid_methods=OTHER_METHODS[request.path])
