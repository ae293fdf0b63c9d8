"""The consent API: record a customer's opt-in or opt-out, and read a contact's consent history."""

from __future__ import annotations

from flask import Blueprint, request

from sigdesk.consent.commands import record_consent
from sigdesk.consent.schemas import ConsentPage, ContactPath, RecordConsent
from sigdesk.consent.services import ConsentEventData, history
from sigdesk.openapi import operation
from sigdesk.paging import Cursor
from sigdesk.schemas import Paging
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("consent_api", __name__, url_prefix="/api/v1")


@bp.post("/contacts/<contact_id>/consent")
@requires("consent.record")
@operation("recordConsent", (201, ConsentEventData), path=ContactPath, json=RecordConsent, errors=(404,))
def record(contact_id: int):
    """Record a marketing opt-in or opt-out

    The newest word decides the contact's marketing_consent; the event is kept in its history.
    """
    body: RecordConsent = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        event = record_consent(session, acting(), contact_id, body.status, body.source, body.evidence)
        answer = ConsentEventData.of(event)  # type: ignore[arg-type]  # said now: always recorded
    return answer, 201


@bp.get("/contacts/<contact_id>/consent")
@requires("api.use")
@operation("listConsent", (200, ConsentPage), path=ContactPath, query=Paging, errors=(404,))
def list_consent(contact_id: int):
    """A contact's consent history, newest word first"""
    query: Paging = request.context.query  # type: ignore[attr-defined]
    cursor = Cursor.decode(query.cursor) if query.cursor else None
    found = history(db_session(), contact_id, cursor, query.limit)
    return ConsentPage(items=[ConsentEventData.of(event) for event in found.items], next_cursor=found.next_cursor)
