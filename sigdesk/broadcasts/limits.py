"""Meta's sending limits as SigDesk keeps them: throughput, the 24-hour messaging limit, the pair rate.

- Throughput: token buckets. Each running campaign has one at its own pace, and each phone number one
  process-wide bucket at whatsapp.throughput that the inbox's sender takes from too, so a campaign and the
  team's replies together never exceed what Meta allows the number. A bucket holds at most a few tokens
  (half of BURST_SHARE of its rate), and the sending threads' StartWindow lets no more than the rate start
  in any second, so the whole 5 % absorbs the delays between a call's start and Meta's receipt: no
  one-second window carries more than rate * 1.05 sends as Meta receives them.
- Messaging limit: the unique customers who got a business-initiated template (one sent while their service
  window was closed) in the moving 24 hours, counted from messages (so test sends, the inbox's templates and
  every campaign count alike).
- Pair rate: at most one template per customer per PAIR_SECONDS.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.models import Direction, Message, MessageStatus
from sigdesk.settings import services as settings_services

BURST_SHARE = 0.05
WINDOW = timedelta(hours=24)
PAIR_SECONDS = 6.0
PAIR = timedelta(seconds=PAIR_SECONDS)


def burst_for(rate: float) -> int:
    """The most tokens a bucket at `rate` holds: half of the 5 % a second may carry over the rate; the other
    half absorbs the jitter between our release and Meta's receipt (about 25 ms at any rate)."""
    return max(1, math.floor(rate * BURST_SHARE / 2))


class TokenBucket:
    """Tokens at `rate` a second up to `burst`; thread-safe. Sends take whole tokens only."""

    def __init__(self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.rate = float(rate)
        self.burst = burst if burst is not None else burst_for(rate)
        self._tokens = float(self.burst)
        self._at = clock()

    def _fill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now

    def set_rate(self, rate: float, burst: int | None = None) -> None:
        with self._lock:
            self._fill()
            self.rate = max(float(rate), 0.001)
            self.burst = burst if burst is not None else burst_for(rate)
            self._tokens = min(self._tokens, float(self.burst))

    def available(self) -> int:
        with self._lock:
            self._fill()
            return int(self._tokens)

    def take(self, wanted: int) -> int:
        """Take up to `wanted` whole tokens that are there now; answers how many were taken."""
        with self._lock:
            self._fill()
            taken = max(0, min(int(self._tokens), wanted))
            self._tokens -= taken
            return taken

    def give_back(self, count: int) -> None:
        """Tokens taken but not used (another bucket had none)."""
        with self._lock:
            self._fill()
            self._tokens = min(float(self.burst), self._tokens + count)

    def wait_seconds(self, count: int = 1) -> float:
        """How long until `count` tokens are there (0: now)."""
        with self._lock:
            self._fill()
            missing = count - self._tokens
            return max(0.0, missing / self.rate) if missing > 0 else 0.0

    def take_waiting(self, count: int = 1, stop: threading.Event | None = None, longest: float = 60.0) -> bool:
        """Wait for `count` tokens and take them; False if `stop` was set or `longest` passed first."""
        deadline = self._clock() + longest
        while True:
            with self._lock:
                self._fill()
                if self._tokens >= count:
                    self._tokens -= count
                    return True
                pause = (count - self._tokens) / self.rate
            if self._clock() + pause > deadline:
                return False
            if stop is not None:
                if stop.wait(pause):
                    return False
            else:
                time.sleep(pause)


def take_from(buckets: Iterable[TokenBucket], wanted: int) -> int:
    """Take the same number of tokens from every bucket (as many as the emptiest has, up to `wanted`)."""
    chosen = list(buckets)
    for bucket in chosen:
        wanted = min(wanted, bucket.available())
    if wanted <= 0:
        return 0
    taken: list[tuple[TokenBucket, int]] = []
    for bucket in chosen:
        got = bucket.take(wanted)
        taken.append((bucket, got))
        if got < wanted:  # another thread took some meanwhile: give back what the others gave
            for earlier, count in taken:
                earlier.give_back(count)
            return 0
    return wanted


_phones: dict[str, TokenBucket] = {}
_phones_lock = threading.Lock()


def phone_bucket(phone_number_id: str, rate: int) -> TokenBucket:
    """The process-wide bucket of a phone number at Meta's throughput for it (the rate follows the setting)."""
    with _phones_lock:
        bucket = _phones.get(phone_number_id)
        if bucket is None:
            bucket = _phones[phone_number_id] = TokenBucket(rate)
        elif bucket.rate != rate:
            bucket.set_rate(rate)
        return bucket


setting = settings_services.plain


def pace_inbox_send(session: Session) -> None:
    """For the inbox's sender: wait for the number's token before each send (outbound.set_pacer)."""
    phone = setting(session, "whatsapp.phone_number_id")
    if phone:
        phone_bucket(str(phone), int(setting(session, "whatsapp.throughput"))).take_waiting(1, longest=5.0)


def tier_limit(tier: str) -> int | None:
    """The messaging limit tier as a number of customers; None for unlimited."""
    return None if tier == "unlimited" else int(tier)


class MessagingWindow:
    """Who got a template from this number in the moving 24 hours, and when last: the messaging limit's count
    and the pair rate's check. Only business-initiated templates count towards the limit: a template sent
    while the customer's own message of the last 24 hours kept their service window open does not (Meta
    counts unique users reached with business-initiated messages); every template counts for the pair rate.
    Kept in memory and brought up to date from messages by id (a range read of the new rows, re-reading the
    last OVERLAP ids since a row with a lower id can commit later; noting is idempotent); the first read scans
    the last day once, later reads only messages of no broadcast (the engine notes its own as it makes them:
    at 500/s, re-reading them cost a quarter of making each batch)."""

    OVERLAP = 1000

    def __init__(self) -> None:
        self.last_id = 0
        self.latest: dict[int, datetime] = {}  # any template: the pair rate
        self.initiated: dict[int, datetime] = {}  # business-initiated templates: the messaging limit
        self._noted: set[int] = set()  # message ids already noted (the overlap, and the engine's own sends)

    def refresh(self, session: Session, now: datetime) -> None:
        first = self.last_id == 0
        query = select(Message.id, Message.contact_id, Message.conversation_id, Message.timestamp).where(
            Message.id > max(0, self.last_id - self.OVERLAP),
            Message.direction == Direction.OUT.value,
            Message.type == "template",
            Message.status != MessageStatus.FAILED.value,
        )
        if first:
            query = query.where(Message.timestamp >= now - WINDOW)
        else:  # since then, every broadcast message was made, and noted, by the engine itself
            query = query.where(Message.broadcast_id.is_(None))
        read = session.execute(query.order_by(Message.id)).all()
        rows = [row for row in read if row.id not in self._noted]
        wrote = self._inbound(session, rows)
        for _, contact_id, conversation_id, at in rows:
            earlier = [moment for moment in wrote.get(conversation_id, ()) if at - WINDOW < moment <= at]
            self.note(contact_id, at, initiated=not earlier)
        if read:
            self.last_id = max(self.last_id, read[-1].id)
        self.noted(row.id for row in rows)
        if self.last_id == 0:
            self.last_id = session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0

    def noted(self, message_ids: Iterable[int]) -> None:
        """These messages are counted already (the engine notes its sends as it makes them): refresh skips
        them, and so reads the day of customer messages only for templates sent by others."""
        self._noted.update(message_ids)
        if len(self._noted) > 4 * self.OVERLAP:
            floor = self.last_id - self.OVERLAP
            self._noted = {message_id for message_id in self._noted if message_id > floor}

    @staticmethod
    def _inbound(session: Session, rows: list[Any]) -> dict[int, list[datetime]]:
        """When the customers of these templates wrote in the day before them (one read for the batch)."""
        if not rows:
            return {}
        conversations = sorted({row.conversation_id for row in rows if row.conversation_id is not None})
        since = min(row.timestamp for row in rows) - WINDOW
        wrote: dict[int, list[datetime]] = {}
        for start in range(0, len(conversations), 1000):
            for conversation_id, at in session.execute(
                select(Message.conversation_id, Message.timestamp).where(
                    Message.conversation_id.in_(conversations[start : start + 1000]),
                    Message.direction == Direction.IN.value,
                    Message.timestamp >= since,
                )
            ):
                wrote.setdefault(conversation_id, []).append(at)
        return wrote

    def note(self, contact_id: int, at: datetime, initiated: bool = True) -> None:
        """A template to this customer at `at`; `initiated`: outside their service window (it counts)."""
        for seen in (self.latest, self.initiated) if initiated else (self.latest,):
            previous = seen.get(contact_id)
            if previous is None or at > previous:
                seen[contact_id] = at

    def _prune(self, now: datetime) -> None:
        since = now - WINDOW
        for seen in (self.latest, self.initiated):
            for contact_id in [key for key, at in seen.items() if at < since]:
                del seen[contact_id]

    def used(self, now: datetime) -> int:
        self._prune(now)
        return len(self.initiated)

    def counts(self, contact_id: int, now: datetime) -> bool:
        """True when this customer already counts in the window (another template to them is free)."""
        at = self.initiated.get(contact_id)
        return at is not None and at >= now - WINDOW

    def frees_at(self, now: datetime) -> datetime | None:
        """When the oldest customer in the window leaves it (one more may then be messaged)."""
        self._prune(now)
        return min(self.initiated.values()) + WINDOW if self.initiated else None

    def pair_ready_at(self, contact_id: int, now: datetime) -> datetime | None:
        """None if a template may go to this customer now, else when it may (the pair rate)."""
        at = self.latest.get(contact_id)
        if at is not None and at > now - PAIR:
            return at + PAIR
        return None


class StartWindow:
    """At most `limit` calls started in any trailing second, counted when each call really starts.

    The buckets pace the release of messages; a thread of the pool that stalls (a busy machine) and then
    starts several calls at once would still crowd one second at Meta. This gate, taken by the sending
    thread just before its call, keeps the count Meta sees in a second within the limit."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._starts: deque[float] = deque()
        self.limit = window_limit(rate)

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self.limit = window_limit(rate)

    def enter(self, stop: threading.Event | None = None) -> bool:
        """Wait until a call may start and count it; False if `stop` was set first."""
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and self._starts[0] <= now - 1.0:
                    self._starts.popleft()
                if len(self._starts) < self.limit:
                    self._starts.append(now)
                    return True
                pause = self._starts[0] + 1.0 - now
            if stop is not None:
                if stop.wait(pause):
                    return False
            else:
                time.sleep(pause)


def window_limit(rate: float) -> int:
    """Calls allowed to start in one second: the rate itself. Between a call's start and Meta's receipt a
    busy process adds tens of milliseconds (measured at 500/s: 531 received in a second of 512 started),
    and the 5 % Meta's side may show is left for that."""
    return max(1, math.floor(rate))
