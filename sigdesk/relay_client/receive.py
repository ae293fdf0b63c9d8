"""Relayed events into SigDesk: Meta's signature checked again here, each relay sequence number stored once.

The relay does not hold the app secret, so it cannot tell Meta's deliveries from forgeries; this
side can. An event whose signature does not match is stored *quarantined* (visible on the webhooks
page, never ingested) rather than dropped: the usual cause is a wrong app secret, and once it is
corrected `recheck_quarantined` lets those events through.

A receipt row per (install, seq), written in the same transaction as the delivery, makes a
redelivery (the acknowledgement was lost, or a replay) a no-op; a redelivered event whose delivery
never finished processing is processed again instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from sigdesk.db import utcnow
from sigdesk.prepared import insert_ignore
from sigdesk.inbound.services import Pending, store_delivery
from sigdesk.models import DeliverySource, DeliveryState, RelayReceipt, WebhookDelivery
from sigdesk.whatsapp.webhook import verify_signature

SIGNATURE_MISMATCH = "relay: the signature does not match the app secret"
RETRY_STATES = frozenset({DeliveryState.RECEIVED.value, DeliveryState.FAILED.value})

_receipts = RelayReceipt.__table__
_deliveries = WebhookDelivery.__table__


@dataclass(frozen=True)
class Relayed:
    """One event as the relay keeps it: Meta's exact bytes and signature header."""

    seq: int
    signature: str | None
    body: bytes


@dataclass
class Stored:
    """What a batch did; `pending` still needs `apply_stored`, after the caller commits."""

    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    pending: list[Pending] = field(default_factory=list)


def store_relayed(session: Session, install: str, events: Sequence[Relayed], app_secret: str) -> Stored:
    """Keep each event's bytes once; flushes, the caller commits (under the inbound write lock)."""
    result = Stored()
    if not events:
        return result
    seqs = [event.seq for event in events]
    known = {
        row.seq: row
        for row in session.execute(
            select(_receipts.c.seq, _receipts.c.delivery_id, _deliveries.c.state, _deliveries.c.error)
            .select_from(_receipts.outerjoin(_deliveries, _deliveries.c.id == _receipts.c.delivery_id))
            .where(_receipts.c.install == install, _receipts.c.seq >= min(seqs), _receipts.c.seq <= max(seqs))
        )
    }
    conn = session.connection()
    for event in events:
        seen = known.get(event.seq)
        if seen is not None:
            _redelivered(session, seen, event, app_secret, result)
            continue
        delivery_id = store_delivery(session, event.body, event.signature, source=DeliverySource.RELAY.value)
        receipt = {"install": install, "seq": event.seq, "delivery_id": delivery_id, "received_at": utcnow()}
        if insert_ignore(conn, _receipts, receipt) is None:
            # another SigDesk process on the same database stored it first
            session.execute(delete(_deliveries).where(_deliveries.c.id == delivery_id))
            result.duplicates += 1
            continue
        result.new += 1
        if verify_signature(app_secret, event.body, event.signature):
            result.pending.append(Pending(delivery_id, event.body))
        else:
            _quarantine(session, delivery_id)
            result.quarantined += 1
    return result


def _redelivered(session: Session, seen, event: Relayed, app_secret: str, result: Stored) -> None:
    if seen.delivery_id is not None and seen.state in RETRY_STATES:
        result.pending.append(Pending(seen.delivery_id, event.body))
    elif (
        seen.delivery_id is not None
        and seen.state == DeliveryState.QUARANTINED.value
        and seen.error == SIGNATURE_MISMATCH
        and verify_signature(app_secret, event.body, event.signature)
    ):
        _release(session, seen.delivery_id)
        result.pending.append(Pending(seen.delivery_id, event.body))
    else:
        result.duplicates += 1


def _quarantine(session: Session, delivery_id: int) -> None:
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id)
        .values(state=DeliveryState.QUARANTINED.value, error=SIGNATURE_MISMATCH, processed_at=utcnow())
    )


def _release(session: Session, delivery_id: int) -> None:
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id)
        .values(state=DeliveryState.RECEIVED.value, error=None, processed_at=None)
    )


def recheck_quarantined(session: Session, app_secret: str | None, limit: int = 5000) -> list[Pending]:
    """After the app secret was corrected: release the relayed events that now verify; flushes."""
    if not app_secret:
        return []
    rows = session.execute(
        select(_deliveries.c.id, _deliveries.c.raw, _deliveries.c.signature)
        .where(_deliveries.c.state == DeliveryState.QUARANTINED.value, _deliveries.c.error == SIGNATURE_MISMATCH)
        .order_by(_deliveries.c.id)
        .limit(limit)
    ).all()
    released = []
    for row in rows:
        if verify_signature(app_secret, row.raw, row.signature):
            _release(session, row.id)
            released.append(Pending(row.id, row.raw))
    return released


def quarantined_count(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(_deliveries)
            .where(_deliveries.c.state == DeliveryState.QUARANTINED.value, _deliveries.c.error == SIGNATURE_MISMATCH)
        )
        or 0
    )


def last_relayed_at(session: Session, install: str | None) -> datetime | None:
    if not install:
        return None
    return session.scalar(
        select(_receipts.c.received_at).where(_receipts.c.install == install).order_by(_receipts.c.seq.desc()).limit(1)
    )
