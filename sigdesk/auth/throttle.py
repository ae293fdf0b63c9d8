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

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

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


def failed(session: Session, email: str, now: datetime | None = None) -> None:
    """Count a failed sign-in (wrong password, unknown address or wrong second factor)."""
    key = _key(email)
    if not key:
        return
    now = now or utcnow()
    row = session.get(SignInThrottle, key)
    if row is None:
        session.execute(delete(SignInThrottle).where(SignInThrottle.last_failure_at < now - FORGET_AFTER))
        row = SignInThrottle(email=key, failures=0, last_failure_at=now)
        session.add(row)
    elif row.locked_until is not None and row.locked_until > now:
        return  # a known device's failure while locked: the lock already runs
    elif row.last_failure_at + FORGET_AFTER <= now:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    window = lock_window(row.failures)
    row.locked_until = now + window if window else None
    session.flush()


def cleared(session: Session, email: str) -> None:
    """A successful sign-in: the count starts again."""
    session.execute(delete(SignInThrottle).where(SignInThrottle.email == _key(email)))


def unlock(session: Session, email: str) -> bool:
    found = session.scalar(select(SignInThrottle.email).where(SignInThrottle.email == _key(email))) is not None
    cleared(session, email)
    return found
