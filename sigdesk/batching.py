"""Group commit: writes that arrive while a batch is being committed go together in the next one.

A commit costs far more than the insert before it, and SQLite takes one writer at a time, so
writing each request in its own transaction caps throughput at one commit per request. Here a
thread that finds no batch in progress becomes the leader and writes everything queued so far, its
own item included; the others sleep until their item is done, or until they can lead the next
batch. No extra thread: the requests' own threads do the work, so nothing needs starting or stopping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatchFailed(RuntimeError):
    """The batch holding this item could not be written; nothing of it was kept."""


class _Ticket(Generic[Item, Result]):
    """One caller's item; `wake` is held until the caller may go on (its item done, or its turn to lead)."""

    __slots__ = ("item", "result", "error", "done", "wake")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = False
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCommit(Generic[Item, Result]):
    """`write(items)` commits the items in one go and returns one result per item, in order.

    `lock`, when given, is held around each write (for example SQLite's write lock). `idle`, when
    given, is called by the last leader of a run of back-to-back batches, before anyone else may
    lead: a place to give back what the run kept open (a database connection). Each waiting thread
    is woken exactly once, by its own lock: waking every waiter on every batch (one shared
    condition) cost more CPU than the batch saved at a few thousand requests a second."""

    def __init__(
        self,
        write: Callable[[list[Item]], Sequence[Result]],
        lock: AbstractContextManager | None = None,
        max_batch: int = 1000,
        idle: Callable[[], None] | None = None,
    ) -> None:
        self._write = write
        self._idle = idle
        self._lock = lock if lock is not None else nullcontext()
        self._mutex = threading.Lock()
        self._queue: list[_Ticket[Item, Result]] = []
        self._leading = False
        self._max_batch = max_batch
        self.batches = 0

    def submit(self, item: Item) -> Result:
        """Block until the item is written (by this thread or another); returns its result."""
        ticket: _Ticket[Item, Result] = _Ticket(item)
        with self._mutex:
            self._queue.append(ticket)
            lead = not self._leading
            self._leading = True
        if not lead:
            ticket.wake.acquire()  # released when done, or when the leader hands this thread the next batch
        while not ticket.done:
            self._lead(ticket)
        if ticket.error is not None:
            raise BatchFailed(f"{type(ticket.error).__name__}: {ticket.error}") from ticket.error
        return ticket.result  # type: ignore[return-value]

    def _lead(self, own: _Ticket[Item, Result]) -> None:
        with self._mutex:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
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
            for ticket in batch:
                ticket.done = True
            successor = None
            with self._mutex:
                self.batches += 1
                if own.done:  # otherwise (more than max_batch were queued ahead) this thread leads on
                    successor = self._queue[0] if self._queue else None
                    self._leading = successor is not None or self._idle is not None
            for ticket in batch:
                if ticket.wake.locked():
                    ticket.wake.release()
            if own.done and successor is None and self._idle is not None:
                successor = self._end_run()
            if successor is not None:
                successor.wake.release()

    def _end_run(self) -> _Ticket[Item, Result] | None:
        try:
            self._idle()  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - the items are written; a failed clean-up must not fail them
            log.exception("clean-up after a run of batches failed")
        with self._mutex:
            successor = self._queue[0] if self._queue else None
            self._leading = successor is not None
        return successor
