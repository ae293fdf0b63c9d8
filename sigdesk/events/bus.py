"""The in-process event bus behind live updates: every waitress thread of the one SigDesk process shares it.

Publishing never blocks on a subscriber: a subscriber whose queue is full is dropped, and its client
catches up from the ring buffer (or resyncs) when it reconnects.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

log = logging.getLogger(__name__)

RING_SIZE = 5000
QUEUE_SIZE = 1000
MAX_STREAMS = 32


@dataclass(frozen=True)
class Event:
    id: str
    seq: int
    kind: str
    conversation_id: int | None
    assignee_id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    # A reassignment also concerns whoever could see the conversation before it (None: everyone, unassigned).
    previous_assignee_ids: tuple[int | None, ...] = ()

    @property
    def audience(self) -> tuple[int | None, ...]:
        """The assignees whose viewers receive this event (see conversations.services.may_see)."""
        return (self.assignee_id, *self.previous_assignee_ids)

    def payload(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation_id, **self.data}


class TooManyStreams(Exception):
    pass


class Closed(Exception):
    """The subscription ended: the server is stopping, or the subscriber fell too far behind."""


class Subscription:
    def __init__(self, bus: "EventBus", maxsize: int, start_id: str, missed: list[Event] | None) -> None:
        self._bus = bus
        self._maxsize = maxsize
        self._items: deque[Event] = deque()
        self._ready = threading.Condition(threading.Lock())
        self.closed = False
        self.overflowed = False
        # Where this subscription starts in the stream, and what it missed before (None: unknown, resync).
        self.start_id = start_id
        self.missed = missed

    def _offer(self, event: Event) -> bool:
        with self._ready:
            if self.closed:
                return False
            if len(self._items) >= self._maxsize:
                self.closed = self.overflowed = True
                self._ready.notify_all()
                return False
            self._items.append(event)
            self._ready.notify()
            return True

    def get(self, timeout: float) -> list[Event]:
        """Everything queued, waiting up to timeout for something; [] on timeout; Closed once ended."""
        with self._ready:
            if not self._items and not self.closed:
                self._ready.wait(timeout)
            if self._items:
                items = list(self._items)
                self._items.clear()
                return items
            if self.closed:
                raise Closed("overflowed" if self.overflowed else "closed")
            return []

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify_all()
        self._bus._forget(self)


class EventBus:
    def __init__(self, ring_size: int = RING_SIZE, queue_size: int = QUEUE_SIZE) -> None:
        # A new epoch per process start: ids from before a restart cannot be caught up.
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._subscribers: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()
        self._queue_size = queue_size

    @property
    def last_id(self) -> str:
        return f"{self.epoch}-{self._seq}"

    def publish(
        self,
        kind: str,
        conversation_id: int | None,
        assignee_id: int | None,
        *,
        previous_assignee_ids: tuple[int | None, ...] = (),
        **data: Any,
    ) -> Event:
        """Cheap enough for the webhook hot path: O(subscribers), no I/O, never waits on a client.

        Pass previous_assignee_ids=(old,) when a conversation changes hands, so its former viewers
        hear that it left them (old None: it was unassigned, every agent saw it)."""
        with self._lock:
            self._seq += 1
            event = Event(
                f"{self.epoch}-{self._seq}",
                self._seq,
                kind,
                conversation_id,
                assignee_id,
                data,
                tuple(previous_assignee_ids),
            )
            self._ring.append(event)
            dropped = [subscription for subscription in self._subscribers if not subscription._offer(event)]
            if dropped:
                self._subscribers = tuple(s for s in self._subscribers if s not in dropped)
        for _subscription in dropped:
            log.info("a live-update client fell behind and was disconnected; it resyncs on reconnect")
        return event

    def _since_locked(self, last_id: str) -> list[Event] | None:
        epoch, _, number = last_id.partition("-")
        if epoch != self.epoch or not number.isdigit():
            return None
        seq = int(number)
        if seq > self._seq:
            return None
        if seq == self._seq:
            return []
        oldest = self._ring[0].seq if self._ring else self._seq + 1
        if seq < oldest - 1:
            return None
        return list(islice(self._ring, seq - oldest + 1, None))

    def since(self, last_id: str) -> list[Event] | None:
        """The events after last_id, or None when they cannot be known (another epoch, or older than the ring)."""
        with self._lock:
            return self._since_locked(last_id)

    def subscribe(self, last_id: str | None = None, limit: int | None = None) -> Subscription:
        """Subscribe and compute what was missed after last_id in one step, so nothing falls in between."""
        with self._lock:
            if limit is not None and len(self._subscribers) >= limit:
                raise TooManyStreams(f"{len(self._subscribers)} live-update streams are open")
            missed = self._since_locked(last_id) if last_id else []
            subscription = Subscription(self, self._queue_size, self.last_id, missed)
            self._subscribers = (*self._subscribers, subscription)
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers = tuple(s for s in self._subscribers if s is not subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def disconnect_all(self) -> None:
        """End every open stream (the server is stopping); the bus stays usable for the next server."""
        with self._lock:
            subscribers, self._subscribers = self._subscribers, ()
        for subscription in subscribers:
            subscription.close()
