"""Per-account sign-in throttling, on top of the per-address rate limit.

The per-address limit alone lets an attacker with many addresses (or behind one proxy) guess one
account's password at full speed. Here failures are counted per email address, whether or not an
account has it, so the lock-out says nothing about which addresses exist:

- the first FREE_FAILURES failures in a row cost nothing;
- each one after that locks the address for a window that doubles from FIRST_LOCK up to MAX_LOCK
  (1, 2, 4, 8, 15 minutes, then 15 minutes each time); while locked, attempts are refused without
  checking the password and do not lengthen the lock;
- a success clears the count, and so does a day without failures.

So that an attacker cannot keep the owner out for good, the lock does not apply in a browser that
has signed in to that account before: it holds a signed "known device" cookie naming the account
(the per-address limit still applies there). The owner can also sign in from the machine's own
browser or clear the lock with the CLI (`sigdesk user unlock`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.db import utcnow
from sigdesk.models import SignInThrottle

FREE_FAILURES = 5
FIRST_LOCK = timedelta(minutes=1)
MAX_LOCK = timedelta(minutes=15)
FORGET_AFTER = timedelta(days=1)
MAX_EMAIL_LENGTH = 254


def _key(email: str) -> str:
    return (email or "").strip().lower()[:MAX_EMAIL_LENGTH]


def lock_window(failures: int) -> timedelta | None:
    """How long the address is locked after this many failures in a row (None: not at all)."""
    if failures < FREE_FAILURES:
        return None
    doublings = min(failures - FREE_FAILURES, 10)
    return min(FIRST_LOCK * (2**doublings), MAX_LOCK)


def locked_for(session: Session, email: str, now: datetime | None = None) -> timedelta | None:
    """How much longer sign-ins to this address are refused (None: not locked)."""
    row = session.get(SignInThrottle, _key(email))
    now = now or utcnow()
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until - now


@dataclass(frozen=True)
class Claim:
    """One sign-in attempt taken against an address's count: refused while `wait` is set; `counted`
    says whether it was counted (as a failure, until it succeeds or is released)."""

    wait: timedelta | None
    counted: bool


def _row_for_update(session: Session, key: str, now: datetime) -> SignInThrottle:
    """The address's row, created if need be, locked until the transaction ends.

    On SQLite the write transaction already holds the database. On MySQL the upsert takes the row's
    exclusive lock at once, so concurrent attempts queue on it (INSERT IGNORE, then SELECT ... FOR
    UPDATE, would take a shared lock first, and two of them upgrading deadlock)."""
    values = {"email": key, "failures": 0, "last_failure_at": now}
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sqlite_insert(SignInThrottle).values(values).on_conflict_do_nothing())
    else:
        statement = mysql_insert(SignInThrottle).values(values)
        session.execute(statement.on_duplicate_key_update(email=statement.inserted.email))
    return session.scalars(
        select(SignInThrottle)
        .where(SignInThrottle.email == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _forget_old(session: Session, keep: str, now: datetime) -> None:
    """Drop other addresses' counts a day old (the table stays small), by key: on MySQL a range delete
    would lock rows that concurrent attempts are using."""
    old = session.scalars(
        select(SignInThrottle.email)
        .where(SignInThrottle.last_failure_at < now - FORGET_AFTER)
        .where(SignInThrottle.email != keep)
    ).all()
    if old:
        session.execute(
            delete(SignInThrottle)
            .where(SignInThrottle.email.in_(old))
            .where(SignInThrottle.last_failure_at < now - FORGET_AFTER)
        )


def claim(session: Session, email: str, known_device: bool = False, now: datetime | None = None) -> Claim:
    """Take an attempt before its password is checked, in the caller's write transaction.

    Checking the lock and counting the failure afterwards let concurrent attempts all pass while
    bcrypt ran; here the attempt counts as a failure up front (a success clears the count, `release`
    gives it back), so the attempt that reaches the limit starts the lock and the next one waits.
    A known device does not feel a running lock and does not lengthen it."""
    key = _key(email)
    if not key:
        return Claim(None, False)
    now = now or utcnow()
    row = _row_for_update(session, key, now)
    _forget_old(session, key, now)
    if row.locked_until is not None and row.locked_until > now:
        return Claim(None if known_device else row.locked_until - now, False)
    if row.last_failure_at + FORGET_AFTER <= now:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    window = lock_window(row.failures)
    row.locked_until = now + window if window else None
    session.flush()
    return Claim(None, True)


def release(session: Session, email: str) -> None:
    """A claimed attempt that was no failure after all: the right password, with the second factor
    still to come (which claims an attempt of its own)."""
    row = session.scalars(
        select(SignInThrottle).where(SignInThrottle.email == _key(email)).with_for_update()
    ).one_or_none()
    if row is None:
        return
    row.failures = max(0, row.failures - 1)
    window = lock_window(row.failures)
    row.locked_until = row.last_failure_at + window if window else None
    session.flush()


def cleared(session: Session, email: str) -> None:
    """A successful sign-in: the count starts again."""
    session.execute(delete(SignInThrottle).where(SignInThrottle.email == _key(email)))


def unlock(session: Session, actor: Actor, email: str) -> bool:
    """Clear an address's lock and count (`sigdesk user unlock`); returns whether there was one."""
    key = _key(email)
    found = session.scalar(select(SignInThrottle.email).where(SignInThrottle.email == key)) is not None
    cleared(session, key)
    record_by(session, actor, "login.unlocked", key, {"was_locked": found})
    return found
