"""The one ingest path: every webhook delivery, direct or relayed, is stored raw and then applied here.

Guarantees, in the order they matter:

* The raw bytes are stored (and committed by the caller) before anything is interpreted, because
  Meta cannot resend a webhook we lost.
* Applying a delivery is idempotent. Messages are stored once per wamid, status events once per
  (wamid, status), reactions once per (target, reactor), other events once per content
  fingerprint; every side effect (unread counts, template status, ...) happens only when its row
  was newly inserted, so a redelivery changes nothing.
* Races between concurrent requests are settled by the database's unique constraints with
  INSERT ... ON CONFLICT DO NOTHING (SQLite) / INSERT IGNORE (MySQL), never by reading first.
* A message's status only climbs: queued < sending < sent < delivered < read < played, and
  failed outranks all of them, so a failed message stays failed. Statuses that arrive before their
  outbound message exists are kept as MessageStatusEvent rows; the send path calls
  `replay_statuses` once it has stored the message, so nothing is lost either way.
* Edits and revokes apply only to the sender's own message, and an older edit never replaces a
  newer one. An edit or revoke that arrives before its target is kept as its own row (type
  edit/revoke) and is not replayed when the target shows up.

`ingest` (in sigdesk.inbound.ingest, re-exported here) is the one function both the direct webhook
and the relay feed; this module stores deliveries and runs them through it.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError, StatementError
from sqlalchemy.orm import Session

from sigdesk.crypto import Cipher
from sigdesk.db import UTCDateTime, utcnow, write_lock
from sigdesk.events.outbox import record
from sigdesk.inbound.ingest import Change, IngestResult, KnownContacts, ingest, ingest_on, replay_statuses
from sigdesk.prepared import Prepared, insert_ignore
from sigdesk.models import DeliveryState, WebhookCounter, WebhookDelivery
from sigdesk.settings import services as settings
from sigdesk.whatsapp import types as wa
from sigdesk.whatsapp.webhook import MalformedDelivery, parse

__all__ = [
    "Applied",
    "Change",
    "Incoming",
    "IngestResult",
    "Pending",
    "app_secret",
    "apply_batch",
    "store_and_apply",
    "count_rejected",
    "describe_error",
    "ensure_verify_token",
    "ingest",
    "is_transient",
    "mark_failed",
    "apply_delivery",
    "apply_stored",
    "rejected_count",
    "replay_statuses",
    "store_delivery",
    "write_lock",
]

log = logging.getLogger(__name__)

BAD_SIGNATURE = "bad_signature"
PROCESS_ATTEMPTS = 5
PROCESS_CHUNK = 100
MAX_ERROR_CHARS = 2000
INTAKE_ISOLATION = "READ COMMITTED"  # on MySQL; see _connection

_deliveries = WebhookDelivery.__table__
_counters = WebhookCounter.__table__


def _when(name: str):
    return bindparam(name, type_=UTCDateTime())


_SET_RESULT_STMT = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        error=bindparam("b_error"),
        event_count=bindparam("b_events"),
        processed_at=_when("b_now"),
    )
)
_SET_RESULT = Prepared(_SET_RESULT_STMT)
_START = Prepared(_SET_RESULT_STMT.values(attempts=_deliveries.c.attempts + 1))
_MARK_FAILED = Prepared(
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("b_id"))
    .values(state=DeliveryState.FAILED.value, error=bindparam("b_error"), processed_at=_when("b_now"))
)
_STORE_COLUMNS = (
    "raw",
    "signature",
    "size",
    "source",
    "state",
    "error",
    "attempts",
    "event_count",
    "received_at",
    "processed_at",
)
_STORE = Prepared(insert(_deliveries), column_keys=_STORE_COLUMNS)


# --- settings ----------------------------------------------------------------------------------


def ensure_verify_token(session: Session, cipher: Cipher) -> str:
    """The token to paste into Meta's callback form; made on first use so there is no default."""
    token = settings.get(session, cipher, "whatsapp.verify_token")
    if not token:
        token = secrets.token_urlsafe(24)
        settings.set_value(session, cipher, "whatsapp.verify_token", token)
    return token


def app_secret(session: Session, cipher: Cipher) -> str | None:
    return settings.get(session, cipher, "whatsapp.app_secret") or None


def count_rejected(session: Session, name: str = BAD_SIGNATURE, by: int = 1, at: datetime | None = None) -> None:
    """Tally refused calls (`by` of them, the last `at`); refused bodies are not stored, so a flood
    cannot fill the disk. The intake counts in memory and calls this every few seconds."""
    now = at or utcnow()
    bump = update(_counters).where(_counters.c.name == name).values(count=_counters.c.count + by, last_at=now)
    if session.execute(bump).rowcount:
        return
    if insert_ignore(session.connection(), _counters, {"name": name, "count": by, "last_at": now}) is None:
        session.execute(bump)


def rejected_count(session: Session, name: str = BAD_SIGNATURE) -> int:
    return session.scalar(select(WebhookCounter.count).where(WebhookCounter.name == name)) or 0


# --- deliveries --------------------------------------------------------------------------------


def store_delivery(session: Session, raw: bytes, signature: str | None, source: str = "direct") -> int:
    """Keep the exact bytes first and return the delivery's id; commit before processing it."""
    return _insert_delivery(session.connection(), raw, signature, source, DeliveryState.RECEIVED.value)


def _insert_delivery(
    conn,
    raw: bytes,
    signature: str | None,
    source: str,
    state: str,
    error: str | None = None,
    event_count: int = 0,
    processed: bool = False,
) -> int:
    now = utcnow()
    return _STORE(
        conn,
        {
            "raw": raw,
            "signature": signature[:100] if signature else None,
            "size": len(raw),
            "source": source,
            "state": state,
            "error": error,
            "attempts": 1 if processed else 0,
            "event_count": event_count,
            "received_at": now,
            "processed_at": now if processed else None,
        },
    ).lastrowid


def _store_applied(
    session: Session,
    conn,
    item: Incoming,
    changes: list[Change],
    known: KnownContacts,
) -> tuple[int, str]:
    """Store a delivery already marked with its outcome and apply it: one statement fewer than
    storing, then marking, when both happen in the same transaction anyway."""
    parsed, state, error = item.parsed, DeliveryState.PROCESSED.value, None
    if parsed is None:
        try:
            parsed = parse(item.raw)
        except MalformedDelivery as exc:
            state, error = DeliveryState.QUARANTINED.value, str(exc)
    delivery_id = _insert_delivery(
        conn,
        item.raw,
        item.signature,
        item.source,
        state,
        error,
        parsed.event_count if parsed is not None else 0,
        processed=True,
    )
    if parsed is not None:
        changes.extend(ingest_on(session, conn, parsed, delivery_id, known).changes)
    return delivery_id, state


def apply_delivery(
    session: Session,
    delivery_id: int,
    raw: bytes | None = None,
    parsed: wa.Delivery | None = None,
    changes: list[Change] | None = None,
    known: KnownContacts | None = None,
) -> str:
    """Parse (unless the caller already did) and apply a stored delivery; returns its new state.

    A body that is not a JSON object is quarantined: it will never parse, and it stays stored.
    Anything else that goes wrong raises, leaving the transaction to the caller: roll back, retry
    when `is_transient`, otherwise `mark_failed` and commit, so the stored copy can be reprocessed.
    """
    conn = _connection(session)
    params: dict[str, Any] = {
        "b_id": delivery_id,
        "b_state": DeliveryState.PROCESSED.value,
        "b_error": None,
        "b_events": 0,
        "b_now": utcnow(),
    }
    if parsed is None and raw is not None:
        try:
            parsed = parse(raw)
        except MalformedDelivery as exc:
            params.update(b_state=DeliveryState.QUARANTINED.value, b_error=str(exc))
    if parsed is not None:
        params["b_events"] = parsed.event_count
    # The first statement writes: SQLite cannot turn a stale read into a write, MySQL locks the row.
    # Marking it processed up front is safe: a failure below rolls the whole transaction back.
    if _START(conn, params).rowcount != 1:
        raise LookupError(f"webhook delivery {delivery_id} does not exist")
    if parsed is None and raw is None:
        try:
            parsed = parse(conn.scalar(select(_deliveries.c.raw).where(_deliveries.c.id == delivery_id)))
            params["b_events"] = parsed.event_count
        except MalformedDelivery as exc:
            params.update(b_state=DeliveryState.QUARANTINED.value, b_error=str(exc))
        _SET_RESULT(conn, params)
    if parsed is None:
        return DeliveryState.QUARANTINED.value
    result = ingest_on(session, conn, parsed, delivery_id, known)
    if changes is not None:
        changes.extend(result.changes)
    return DeliveryState.PROCESSED.value


def _connection(session: Session):
    """On MySQL, READ COMMITTED: REPEATABLE READ's gap locks (taken even by an UPDATE that matches
    nothing, like a status for an unknown wamid) deadlock concurrent deliveries. Every decision here
    rests on unique keys and single-statement updates, which need no gap locks."""
    if session.get_bind().dialect.name in ("mysql", "mariadb") and not session.in_transaction():
        bind = session.bind
        if not (
            isinstance(bind, Connection) and bind.get_execution_options().get("isolation_level") == INTAKE_ISOLATION
        ):
            return session.connection(execution_options={"isolation_level": INTAKE_ISOLATION})
    return session.connection()


def apply_stored(
    session: Session,
    delivery_id: int,
    raw: bytes | None = None,
    parsed: wa.Delivery | None = None,
    changes: list[Change] | None = None,
) -> str:
    """Apply a committed delivery in its own transaction, again after a deadlock; never lose the stored copy.

    The one place both the webhook and the relay go through. It commits (unlike other services)
    because a retry needs a rollback: callers commit `store_delivery` first, then call this.
    """
    for attempt in range(1, PROCESS_ATTEMPTS + 1):
        found: list[Change] = []
        try:
            state = apply_delivery(session, delivery_id, raw, parsed, found)
            record(session, *dict.fromkeys(found))
            session.commit()
            if changes is not None:
                changes.extend(found)
            return state
        except Exception as exc:  # noqa: BLE001 - whatever broke, the delivery must end up marked
            session.rollback()
            if attempt < PROCESS_ATTEMPTS and is_transient(exc):
                time.sleep(random.uniform(0, 0.005 * attempt))  # let the other transaction finish first
                continue
            try:
                mark_failed(session, delivery_id, exc)
                session.commit()
            except SQLAlchemyError as again:
                session.rollback()
                log.error("webhook delivery %s: could not record the failure: %s", delivery_id, describe_error(again))
            return DeliveryState.FAILED.value
    return DeliveryState.FAILED.value  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class Incoming:
    """A signed delivery as it came in; `parsed` is None when the caller could not parse it."""

    raw: bytes
    signature: str | None
    parsed: wa.Delivery | None = None
    source: str = "direct"


@dataclass(frozen=True)
class Pending:
    """A committed delivery still to be applied."""

    delivery_id: int
    raw: bytes
    parsed: wa.Delivery | None = None


@dataclass
class Applied:
    states: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


def store_and_apply(session: Session, incoming: Sequence[Incoming]) -> tuple[list[int], Applied]:
    """Store the raw deliveries and apply them in one transaction; returns their ids and outcome.

    Usually everything applies, and one commit keeps both. When anything fails, all of it is rolled
    back and done the careful way: the raw copies committed first, then applied one by one where
    needed, so a delivery that cannot be applied is still kept (marked failed). Callers answer Meta
    only after this returns, so a crash in between loses nothing: Meta sends it again.
    """
    with write_lock(session):
        conn = _connection(session)
        ids: list[int] = []
        applied = Applied()
        known = KnownContacts()
        try:
            for item in incoming:
                delivery_id, state = _store_applied(session, conn, item, applied.changes, known)
                ids.append(delivery_id)
                applied.states.append(state)
            record(session, *dict.fromkeys(applied.changes))
            session.commit()
            return ids, applied
        except Exception as exc:  # noqa: BLE001 - done again the careful way just below
            session.rollback()
            log.info(
                "%d deliveries could not be applied together (%s); storing them first",
                len(incoming),
                type(exc).__name__,
            )
    with write_lock(session):
        ids = [store_delivery(session, item.raw, item.signature, item.source) for item in incoming]
        session.commit()
    return ids, apply_batch(session, [Pending(i, item.raw, item.parsed) for i, item in zip(ids, incoming)])


def apply_batch(session: Session, pending: Sequence[Pending]) -> Applied:
    """Apply committed deliveries a chunk per transaction: one commit instead of a hundred.

    A chunk that fails is rolled back and applied one by one through apply_stored, which retries
    deadlocks and marks what still fails, so one bad delivery never holds back the others.
    """
    applied = Applied()
    for start in range(0, len(pending), PROCESS_CHUNK):
        chunk = pending[start : start + PROCESS_CHUNK]
        with write_lock(session):
            states: list[str] = []
            changes: list[Change] = []
            known = KnownContacts()
            try:
                for item in chunk:
                    states.append(apply_delivery(session, item.delivery_id, item.raw, item.parsed, changes, known))
                record(session, *dict.fromkeys(changes))
                session.commit()
                applied.states.extend(states)
                applied.changes.extend(changes)
                continue
            except Exception as exc:  # noqa: BLE001 - applied one by one just below
                session.rollback()
                log.info(
                    "a chunk of %d deliveries failed together (%s); applying them one by one",
                    len(chunk),
                    type(exc).__name__,
                )
        for item in chunk:
            with write_lock(session):
                applied.states.append(apply_stored(session, item.delivery_id, item.raw, item.parsed, applied.changes))
    return applied


def mark_failed(session: Session, delivery_id: int, error: BaseException | str) -> None:
    """After rolling back a failed `apply_delivery`: note why, keep the delivery for a retry."""
    reason = describe_error(error)
    if isinstance(error, BaseException):
        log.error(
            "webhook delivery %s failed to process: %s",
            delivery_id,
            reason,
            exc_info=None if isinstance(error, StatementError) else error,
        )
    _MARK_FAILED(session.connection(), {"b_id": delivery_id, "b_error": reason, "b_now": utcnow()})


def is_transient(exc: BaseException) -> bool:
    """Deadlocks and lock timeouts: roll back and run the same delivery again."""
    orig = getattr(exc, "orig", None)
    code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
    if code in (1205, 1213):  # MySQL lock wait timeout, deadlock
        return True
    return "database is locked" in str(orig or exc)


def describe_error(error: BaseException | str) -> str:
    """The error without SQLAlchemy's copy of the bound values, which would put message bodies in logs."""
    if isinstance(error, str):
        text = error
    elif isinstance(error, StatementError) and error.orig is not None:
        text = f"{type(error.orig).__name__}: {error.orig}"
    else:
        text = f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_CHARS]
