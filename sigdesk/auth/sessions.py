"""Browser sessions kept on the server, so that signing out (here or everywhere) ends them for good.

The signed cookie alone cannot be taken back: a copy of it worked for 31 days after sign-out. Now the
cookie carries a random nonce whose hash is a row in `user_sessions`, checked on every request.

Lifetimes (also in the README):

- an ordinary sign-in ends after 12 hours without a request, and 24 hours after it began at the latest;
  its cookie ends with the browser;
- "Keep me signed in" keeps the cookie for 14 days: the session ends after 7 days without a request,
  and 14 days after sign-in at the latest.

Changing the password or role, deactivation and resetting two-factor still end every session through
the user's `session_version` (a per-user generation); "Sign out everywhere" does both.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.db import utcnow
from sigdesk.events.catalogue import UserChanged
from sigdesk.events.outbox import record
from sigdesk.models import User, UserSession

IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(hours=24)
REMEMBER_IDLE = timedelta(days=7)
REMEMBER_ABSOLUTE = timedelta(days=14)
TOUCH_INTERVAL = timedelta(minutes=1)


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


def idle_limit(row: UserSession) -> timedelta:
    return REMEMBER_IDLE if row.remember else IDLE


def start(session: Session, user: User, remember: bool = False) -> str:
    """A new session for a user who just signed in; returns the nonce for the cookie (kept only hashed).

    The user's ended sessions are cleared out on the way, so the table stays the size of the team."""
    now = utcnow()
    session.execute(
        delete(UserSession)
        .where(UserSession.user_id == user.id)
        .where(
            or_(
                UserSession.revoked_at.is_not(None),
                UserSession.expires_at < now,
                UserSession.session_version != user.session_version,
            )
        )
    )
    nonce = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            user_id=user.id,
            nonce_hash=_hash(nonce),
            session_version=user.session_version,
            remember=remember,
            created_at=now,
            last_seen_at=now,
            expires_at=now + (REMEMBER_ABSOLUTE if remember else ABSOLUTE),
        )
    )
    session.flush()
    return nonce


@dataclass(frozen=True)
class Current:
    """A live session as found for a request."""

    id: int
    user: User
    needs_touch: bool


def _owner_if_live(session: Session, row: UserSession | None, now: datetime) -> User | None:
    """The session's user while it counts: not revoked, expired or idle too long, and the user still
    active with the same session version (a password, role or 2FA change ends every session)."""
    if row is None or row.revoked_at is not None or row.expires_at <= now or row.last_seen_at + idle_limit(row) <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active or user.session_version != row.session_version:
        return None
    return user


def find(session: Session, user_id: int, nonce: str, now: datetime | None = None) -> Current | None:
    """The live session for a cookie's nonce, or None when it was revoked, expired or idle too long."""
    if not nonce:
        return None
    row = session.scalar(select(UserSession).where(UserSession.nonce_hash == _hash(nonce)))
    now = now or utcnow()
    user = _owner_if_live(session, row, now) if row is not None and row.user_id == user_id else None
    if user is None:
        return None
    return Current(row.id, user, row.last_seen_at + TOUCH_INTERVAL <= now)


def touch(session: Session, session_id: int) -> None:
    """Note the request, at most once a minute, so reads stay reads."""
    now = utcnow()
    session.execute(
        update(UserSession)
        .where(UserSession.id == session_id)
        .where(UserSession.last_seen_at < now - TOUCH_INTERVAL)
        .values(last_seen_at=now)
    )


def is_live(session: Session, session_id: int, now: datetime | None = None) -> bool:
    """Whether a session found earlier still counts (for long requests such as live-update streams)."""
    return _owner_if_live(session, session.get(UserSession, session_id), now or utcnow()) is not None


def sign_out(session: Session, actor: Actor, session_id: int | None) -> bool:
    """Sign-out: this session's cookie, and every copy of it, stops working. Returns whether a live
    session ended (a second click on "Sign out" ends nothing and records nothing)."""
    if session_id is None:
        return False
    ended = session.execute(
        update(UserSession)
        .where(UserSession.id == session_id)
        .where(UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    if ended:
        record_by(session, actor, "session.signed_out", actor.user.email if actor.user else None)
    return bool(ended)


def end_all(session: Session, user: User) -> None:
    """End every session of a user."""
    session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id)
        .where(UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    user.session_version += 1
    session.flush()


def sign_out_everywhere(session: Session, actor: Actor, user: User) -> int:
    """The account page's "Sign out everywhere": every browser of the user, this one included."""
    ended = len(list_open(session, user))
    end_all(session, user)
    record_by(session, actor, "session.signed_out_everywhere", user.email, {"sessions": ended})
    record(session, UserChanged(user.id, "signed_out"))
    return ended


def list_open(session: Session, user: User) -> list[UserSession]:
    now = utcnow()
    rows = session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id)
        .where(UserSession.revoked_at.is_(None))
        .where(UserSession.session_version == user.session_version)
        .where(UserSession.expires_at > now)
        .order_by(UserSession.last_seen_at.desc())
    )
    return [row for row in rows if row.last_seen_at + idle_limit(row) > now]
