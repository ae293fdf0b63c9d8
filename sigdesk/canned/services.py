"""Canned responses: saved replies an agent inserts with /shortcut; admins manage them."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.db import flush_unique, utcnow
from sigdesk.errors import Conflict, NotFound, UserError
from sigdesk.models import CannedResponse, User

MAX_CANNED = 4096
MAX_PAGE = 200
SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def list_canned(session: Session, prefix: str = "") -> list[CannedResponse]:
    query = select(CannedResponse).order_by(CannedResponse.shortcut)
    prefix = prefix.strip().lstrip("/").lower()
    if prefix:
        query = query.where(CannedResponse.shortcut.startswith(prefix, autoescape=True))
    return list(session.scalars(query.limit(MAX_PAGE)))


def _canned_fields(shortcut: str, body: str) -> tuple[str, str]:
    shortcut = (shortcut or "").strip().lstrip("/").lower()
    body = (body or "").strip()
    if not SHORTCUT.fullmatch(shortcut):
        raise UserError("A shortcut is 1 to 64 letters, digits, - or _ (typed after /)", field="shortcut")
    if not body or len(body) > MAX_CANNED:
        raise UserError(f"The response text is 1 to {MAX_CANNED} characters", field="body")
    return shortcut, body


def create_canned(session: Session, shortcut: str, body: str, author: User | None) -> CannedResponse:
    shortcut, body = _canned_fields(shortcut, body)
    if session.scalar(select(CannedResponse.id).where(CannedResponse.shortcut == shortcut)) is not None:
        raise Conflict(f"The shortcut /{shortcut} is already taken", field="shortcut")
    now = utcnow()
    canned = CannedResponse(
        shortcut=shortcut, body=body, created_by=author.id if author else None, created_at=now, updated_at=now
    )
    session.add(canned)
    flush_unique(session, f"The shortcut /{shortcut} is already taken", field="shortcut")
    return canned


def update_canned(session: Session, canned_id: int, shortcut: str, body: str) -> CannedResponse:
    canned = session.get(CannedResponse, canned_id)
    if canned is None:
        raise NotFound("No such canned response", field="canned_id")
    shortcut, body = _canned_fields(shortcut, body)
    clash = session.scalar(
        select(CannedResponse.id).where(CannedResponse.shortcut == shortcut, CannedResponse.id != canned_id)
    )
    if clash is not None:
        raise Conflict(f"The shortcut /{shortcut} is already taken", field="shortcut")
    canned.shortcut, canned.body, canned.updated_at = shortcut, body, utcnow()
    flush_unique(session, f"The shortcut /{shortcut} is already taken", field="shortcut")
    return canned


def delete_canned(session: Session, canned_id: int) -> None:
    canned = session.get(CannedResponse, canned_id)
    if canned is None:
        raise NotFound("No such canned response", field="canned_id")
    session.delete(canned)
    session.flush()
