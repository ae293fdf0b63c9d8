"""The catalog sync as background work: a person asks (the Products page's button), the worker runs it.

The request is a domain event in the outbox, so it survives a restart and runs once; several requests
waiting together run one sync. The outcome goes to the audit log ("products.catalog_synced" with the
counts, or "products.catalog_sync_failed" with the reason), which the page reads back: no table of its
own is needed for a job that keeps nothing but its last answer. The Graph calls hold no lock and no
transaction; the writes take the write lock, as every worker write does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.crypto import Cipher
from sigdesk.db import write_lock
from sigdesk.errors import UserError
from sigdesk.events.catalogue import CatalogSyncQueued
from sigdesk.events.outbox import Stored, record
from sigdesk.models import AuditEvent, User
from sigdesk.sales.catalog import CatalogError, apply_catalog, configured_catalog, fetch_catalog, resolve_catalog
from sigdesk.whatsapp_account.services import NotConnected, graph_client

log = logging.getLogger(__name__)

QUEUED = "products.catalog_sync_queued"
SYNCED = "products.catalog_synced"
FAILED = "products.catalog_sync_failed"
CONSUMER = "catalog sync"


def request_sync(session: Session, actor: Actor) -> None:
    """Queue a sync from the Meta catalog; the worker runs it after this transaction commits."""
    record_by(session, actor, QUEUED)
    record(session, CatalogSyncQueued(actor.user_id))


@dataclass(frozen=True)
class LastSync:
    at: datetime
    ok: bool
    words: str
    running: bool


def last_sync(session: Session) -> LastSync | None:
    """The latest request or outcome, for the page: queued (running), synced with counts, or failed."""
    row = session.scalars(
        select(AuditEvent).where(AuditEvent.action.in_((QUEUED, SYNCED, FAILED))).order_by(AuditEvent.id.desc())
    ).first()
    if row is None:
        return None
    try:
        detail = json.loads(row.detail or "{}")
    except ValueError:
        detail = {}
    if row.action == QUEUED:
        return LastSync(row.at, True, "A sync from the Meta catalog is waiting for the background worker.", True)
    if row.action == FAILED:
        return LastSync(row.at, False, str(detail.get("reason") or "The sync failed."), False)
    words = (
        f"{detail.get('created', 0)} created, {detail.get('updated', 0)} updated, "
        f"{detail.get('unchanged', 0)} unchanged, {detail.get('deactivated', 0)} deactivated, "
        f"{detail.get('refused', 0)} refused"
    )
    refusals = detail.get("refusals") or []
    if refusals:
        words += ". Refused: " + "; ".join(f"{sku} ({reason})" for sku, reason in refusals[:5])
    return LastSync(row.at, True, words, False)


class CatalogSync:
    """The outbox consumer: one sync for every batch of requests."""

    def __init__(self, cipher: Cipher) -> None:
        self.cipher = cipher

    def __call__(self, session: Session, events: list[Stored]) -> int:
        requested = [item.event for item in events if isinstance(item.event, CatalogSyncQueued)]
        if not requested:
            return 0
        user_id = requested[-1].user_id
        user = session.get(User, user_id) if user_id is not None else None
        actor = Actor(user, "worker")
        try:
            client = graph_client(session, self.cipher)
        except NotConnected as exc:
            self._failed(session, actor, str(exc))
            return len(requested)
        try:
            with client:
                catalog_id = resolve_catalog(client, configured_catalog(session))
                session.commit()  # no transaction is held over the network
                items = fetch_catalog(client, catalog_id)
        except CatalogError as exc:
            self._failed(session, actor, exc.message)
            return len(requested)
        try:
            with write_lock(session):
                result = apply_catalog(session, actor, catalog_id, items)
                session.commit()
        except UserError as exc:
            session.rollback()
            self._failed(session, actor, exc.message)
            return len(requested)
        log.info("catalog sync: %s", result.summary)
        return len(requested)

    @staticmethod
    def _failed(session: Session, actor: Actor, reason: str) -> None:
        session.rollback()
        with write_lock(session):
            record_by(session, actor, FAILED, detail={"reason": reason})
            session.commit()
