"""The one background worker: durable work kept in the database, done on a thread.

Work lives in tables (queued messages, pending media), so a crash or a closed window loses
nothing; the thread only decides when to look. Tasks are plain functions that take a session
and return how many items they handled, so tests can run them directly with run_once().

Loops (add_loop) are for work that blocks by nature, like the relay's long-poll: each gets its own
thread, started and stopped with the worker, so it cannot hold up the tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from sigdesk.db import Database

log = logging.getLogger(__name__)

Task = Callable[[Session], int]


@dataclass(frozen=True)
class Registered:
    name: str
    run: Task
    # Woken for this task alone, the worker first waits this long so the wakes of a burst share one run.
    gather: float = 0.0


@dataclass(frozen=True)
class Loop:
    name: str
    run: Callable[[threading.Event], None]
    interrupt: Callable[[], None] | None


LOOP_RESTART_SECONDS = 5.0
LOOP_JOIN_SECONDS = 1.0


class Worker:
    def __init__(self, database: Database, idle_seconds: float = 2.0) -> None:
        self.database = database
        self.idle_seconds = idle_seconds
        self.tasks: list[Registered] = []
        self.startup: list[Registered] = []
        self._wake = threading.Event()
        self._woken_for: set[str | None] = set()  # task names a wake asked for; None: every task
        self._woken_lock = threading.Lock()
        self._all_ran_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loops: list[Loop] = []
        self._loop_threads: list[threading.Thread] = []
        self._loop_stop = threading.Event()

    def register(self, name: str, task: Task, gather: float = 0.0) -> None:
        self.tasks.append(Registered(name, task, gather))

    def on_start(self, name: str, task: Task) -> None:
        """Run once each time the worker starts, before the first pass (e.g. crash recovery)."""
        self.startup.append(Registered(name, task))

    def add_loop(
        self, name: str, run: Callable[[threading.Event], None], interrupt: Callable[[], None] | None = None
    ) -> None:
        """`run(stop)` loops until `stop` is set; `interrupt` is called on stop to cut its waits short."""
        self.loops.append(Loop(name, run, interrupt))

    @staticmethod
    def _run_loop(loop: Loop, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                loop.run(stop)
            except Exception:  # noqa: BLE001 - a crashed loop restarts rather than silently ending
                log.exception("background loop %s failed; restarting it", loop.name)
                stop.wait(LOOP_RESTART_SECONDS)

    def wake(self, only: str | None = None) -> None:
        """Called after committing new work so it starts now rather than at the next tick. `only` names
        the one task the new work is for: ingest's events wake the outbox consumers many times a second,
        and running every other task (media, sending, retention) each time would cost ingest its speed."""
        with self._woken_lock:
            self._woken_for.add(only)
        self._wake.set()

    def _take_wake(self) -> set[str | None]:
        """What the wakes since the last look asked for: task names, None for every task."""
        with self._woken_lock:
            wanted, self._woken_for = self._woken_for, set()
        return wanted

    def _tasks_for(self, wanted: set[str | None]) -> list[Registered] | None:
        """The tasks to run for these wakes; None (every task) also for an idle tick, when nothing asked,
        and whenever every task last ran idle_seconds ago: wakes for one task never starve the others."""
        if not wanted or None in wanted or time.monotonic() - self._all_ran_at >= self.idle_seconds:
            return None
        return [task for task in self.tasks if task.name in wanted]

    def run_once(self, tasks: list[Registered] | None = None) -> int:
        if tasks is None:
            self._all_ran_at = time.monotonic()
        handled = 0
        for task in self.tasks if tasks is None else tasks:
            try:
                with self.database.session() as session:
                    handled += task.run(session) or 0
            except Exception:  # noqa: BLE001 - one failing task must not stop the others
                log.exception("background task %s failed", task.name)
        return handled

    def _loop(self) -> None:
        self.run_once(self.startup)
        tasks: list[Registered] | None = None
        while not self._stop.is_set():
            handled = self.run_once(tasks)
            if handled:  # more may be waiting: go round again, with every task once they are due
                if tasks is not None and time.monotonic() - self._all_ran_at >= self.idle_seconds:
                    tasks = None
                continue
            self._wake.wait(self.idle_seconds)
            self._wake.clear()
            wanted = self._take_wake()
            tasks = self._tasks_for(wanted)
            gather = max((task.gather for task in tasks), default=0.0) if tasks is not None else 0.0
            if gather and not self._stop.wait(gather):
                self._wake.clear()
                tasks = self._tasks_for(wanted | self._take_wake())

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="sigdesk-jobs", daemon=True)
            self._thread.start()
            # a fresh event per start: a loop still blocked from an earlier run must not resume
            self._loop_stop = threading.Event()
            self._loop_threads = [
                threading.Thread(
                    target=self._run_loop, args=(loop, self._loop_stop), name=f"sigdesk-{loop.name}", daemon=True
                )
                for loop in self.loops
            ]
            for thread in self._loop_threads:
                thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._loop_stop.set()
        for loop in self.loops:
            if loop.interrupt is not None:
                loop.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for thread in self._loop_threads:
            thread.join(
                LOOP_JOIN_SECONDS
            )  # a loop blocked in a network read may outlive this; it writes nothing after stop
        self._loop_threads = []

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
