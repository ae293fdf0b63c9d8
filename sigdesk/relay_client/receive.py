"""Relayed events into SigDesk: Meta's signature checked again here, each relay sequence number stored once.

The relay does not hold the app secret, so it cannot tell Meta's deliveries from forgeries; this
side can. An event whose signature does not match is never ingested and its bytes are not kept:
only a digest and a few facts (rejected_deliveries: sha256, size, time, install and seq), at most
MAX_REJECTED of them and for KEEP_REJECTED, so forgeries cannot fill the disk. The usual cause is a
wrong app secret: once it is corrected, a replay from the relay (which still has the bytes) lets
those events through, because a redelivered seq that was rejected is checked again.

A receipt row per (install, seq), written in the same transaction as the delivery, makes a
redelivery (the acknowledgement was lost, or a replay) a no-op; a redelivered event whose delivery
never finished processing is processed again instead.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from sigdesk.db import utcnow, write_lock
from sigdesk.prepared import insert_ignore
from sigdesk.inbound.services import Pending, store_delivery
from sigdesk.models import DeliverySource, DeliveryState, RejectedDelivery, RelayReceipt, WebhookDelivery
from sigdesk.whatsapp.webhook import verify_signature

SIGNATURE_MISMATCH = "relay: the signature does not match the app secret"
BAD_SIGNATURE = "bad_signature"
RETRY_STATES = frozenset({DeliveryState.RECEIVED.value, DeliveryState.FAILED.value})
MAX_REJECTED = 1000
KEEP_REJECTED = timedelta(days=30)
PURGE_EVERY_SECONDS = 3600.0

_receipts = RelayReceipt.__table__
_deliveries = WebhookDelivery.__table__
_rejected = RejectedDelivery.__table__


@dataclass(frozen=True)
class Relayed:
    """One event as the relay keeps it: Meta's exact bytes and signature header."""

    seq: int
    signature: str | None
    body: bytes
    received_at: datetime | None = None  # when the relay got it from Meta (or whoever sent it)


@dataclass
class Stored:
    """What a batch did; `pending` still needs `apply_stored`, after the caller commits."""

    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    pending: list[Pending] = field(default_factory=list)


def store_relayed(session: Session, install: str, events: Sequence[Relayed], app_secret: str) -> Stored:
    """Keep each event's bytes once (a forgery's digest only); flushes, the caller commits (under the
    inbound write lock)."""
    result = Stored()
    if not events:
        return result
    seqs = [event.seq for event in events]
    known = {
        row.seq: row
        for row in session.execute(
            select(
                _receipts.c.seq,
                _receipts.c.delivery_id,
                _deliveries.c.state,
                _rejected.c.id.label("rejected_id"),
            )
            .select_from(
                _receipts.outerjoin(_deliveries, _deliveries.c.id == _receipts.c.delivery_id).outerjoin(
                    _rejected, and_(_rejected.c.install == _receipts.c.install, _rejected.c.seq == _receipts.c.seq)
                )
            )
            .where(_receipts.c.install == install, _receipts.c.seq >= min(seqs), _receipts.c.seq <= max(seqs))
        )
    }
    conn = session.connection()
    for event in events:
        seen = known.get(event.seq)
        if seen is not None:
            _redelivered(session, install, seen, event, app_secret, result)
            continue
        genuine = verify_signature(app_secret, event.body, event.signature)
        if not genuine:
            receipt = {"install": install, "seq": event.seq, "delivery_id": None, "received_at": utcnow()}
            if insert_ignore(conn, _receipts, receipt) is None:
                result.duplicates += 1
                continue
            _reject(session, install, event)
            result.new += 1
            result.quarantined += 1
            continue
        delivery_id = store_delivery(session, event.body, event.signature, source=DeliverySource.RELAY.value)
        receipt = {"install": install, "seq": event.seq, "delivery_id": delivery_id, "received_at": utcnow()}
        if insert_ignore(conn, _receipts, receipt) is None:
            # another SigDesk process on the same database stored it first
            session.execute(delete(_deliveries).where(_deliveries.c.id == delivery_id))
            result.duplicates += 1
            continue
        result.new += 1
        result.pending.append(Pending(delivery_id, event.body))
    if result.quarantined:
        purge_rejected(session)
    return result


def _redelivered(session: Session, install: str, seen, event: Relayed, app_secret: str, result: Stored) -> None:
    if seen.delivery_id is not None and seen.state in RETRY_STATES:
        result.pending.append(Pending(seen.delivery_id, event.body))
    elif (
        seen.delivery_id is None
        and seen.rejected_id is not None
        and verify_signature(app_secret, event.body, event.signature)
    ):
        # rejected before, genuine now (the app secret was corrected, then the relay replayed it)
        delivery_id = store_delivery(session, event.body, event.signature, source=DeliverySource.RELAY.value)
        session.execute(
            update(_receipts)
            .where(_receipts.c.install == install, _receipts.c.seq == event.seq)
            .values(delivery_id=delivery_id)
        )
        session.execute(delete(_rejected).where(_rejected.c.id == seen.rejected_id))
        result.pending.append(Pending(delivery_id, event.body))
    else:
        result.duplicates += 1


def _reject(session: Session, install: str, event: Relayed) -> None:
    session.execute(
        _rejected.insert().values(
            received_at=event.received_at or utcnow(),
            source=DeliverySource.RELAY.value,
            reason=BAD_SIGNATURE,
            size=len(event.body),
            sha256=hashlib.sha256(event.body).hexdigest(),
            install=install,
            seq=event.seq,
        )
    )


def purge_rejected(session: Session, now: datetime | None = None) -> int:
    """Keep the newest MAX_REJECTED digests, none older than KEEP_REJECTED; flushes, returns how many went."""
    newest = session.scalar(select(func.max(_rejected.c.id)))
    if newest is None:
        return 0
    cutoff = (now or utcnow()) - KEEP_REJECTED
    return session.execute(
        delete(_rejected).where(or_(_rejected.c.id <= newest - MAX_REJECTED, _rejected.c.received_at < cutoff))
    ).rowcount


class RejectedPurge:
    """The worker's task: purge_rejected once an hour, so old digests go even when no new forgery comes."""

    def __init__(self, every: float = PURGE_EVERY_SECONDS) -> None:
        self.every = every
        self._last = float("-inf")

    def __call__(self, session: Session) -> int:
        if time.monotonic() - self._last < self.every:
            return 0
        self._last = time.monotonic()
        with write_lock(session):
            purge_rejected(session)
            session.commit()
        return 0


def oldest_rejected_at(session: Session) -> datetime | None:
    """When the oldest relayed delivery still listed as rejected arrived: where a replay must start."""
    return session.scalar(
        select(func.min(_rejected.c.received_at)).where(_rejected.c.source == DeliverySource.RELAY.value)
    )


def quarantined_count(session: Session) -> int:
    """Relayed deliveries refused for their signature and still listed (as digests)."""
    return (
        session.scalar(
            select(func.count()).select_from(_rejected).where(_rejected.c.source == DeliverySource.RELAY.value)
        )
        or 0
    )


def last_relayed_at(session: Session, install: str | None) -> datetime | None:
    if not install:
        return None
    return session.scalar(
        select(_receipts.c.received_at).where(_receipts.c.install == install).order_by(_receipts.c.seq.desc()).limit(1)
    )
