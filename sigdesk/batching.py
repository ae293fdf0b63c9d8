"""Group commit: writes that arrive while a batch is being committed go together in the next one.

A commit costs far more than the insert before it, and SQLite takes one writer at a time, so
writing each request in its own transaction caps throughput at one commit per request. Here a
thread that finds no batch in progress becomes the leader and writes everything queued so far, its
own item included; the others sleep until their item is done, or until they can lead the next
batch. No extra thread: the requests' own threads do the work, so nothing needs starting or stopping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatchFailed(RuntimeError):
    """The batch holding this item could not be written; nothing of it was kept."""


class _Ticket(Generic[Item, Result]):
    __slots__ = ("item", "result", "error", "done")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit(Generic[Item, Result]):
    """`write(items)` commits the items in one go and returns one result per item, in order.

    `lock`, when given, is held around each write (for example SQLite's write lock)."""

    def __init__(self, write: Callable[[list[Item]], Sequence[Result]], lock: AbstractContextManager | None = None,
                 max_batch: int = 1000) -> None:
        self._write = write
        self._lock = lock if lock is not None else nullcontext()
        self._changed = threading.Condition()
        self._queue: list[_Ticket[Item, Result]] = []
        self._leading = False
        self._max_batch = max_batch
        self.batches = 0

    def submit(self, item: Item) -> Result:
        """Block until the item is written (by this thread or another); returns its result."""
        ticket: _Ticket[Item, Result] = _Ticket(item)
        with self._changed:
            self._queue.append(ticket)
        while True:
            with self._changed:
                while self._leading and not ticket.done:
                    self._changed.wait()
                if ticket.done:
                    break
                self._leading = True
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
            self._lead(batch)
        if ticket.error is not None:
            raise BatchFailed(f"{type(ticket.error).__name__}: {ticket.error}") from ticket.error
        return ticket.result  # type: ignore[return-value]

    def _lead(self, batch: list[_Ticket[Item, Result]]) -> None:
        try:
            with self._lock:
                results = self._write([ticket.item for ticket in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
            for ticket, result in zip(batch, results):
                ticket.result = result
        except Exception as exc:  # noqa: BLE001 - every waiting caller must learn that its write failed
            for ticket in batch:
                ticket.error = exc
        finally:
            with self._changed:
                self.batches += 1
                for ticket in batch:
                    ticket.done = True
                self._leading = False
                self._changed.notify_all()
