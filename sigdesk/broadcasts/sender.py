"""The process that makes a broadcast's calls to Meta.

At 500 messages a second the HTTP calls took a third of the server process's CPU, and the process's one
interpreter lock had no room left: the campaign fell behind its pace and the inbox slowed down. So the
calls run in a child process with a lock of its own, each of its threads on its own fork of the Graph
client, while the engine keeps the pacing, the release journal and every database write.

The two talk in JSON lines. To the child: {"threads": n} first (answered {"ready": true}), then
{"client": recipe or null} (see GraphClient.recipe; the token travels on the pipe, never on a command
line; answered {"configured": true} once each thread has its fork), {"send": id, "payload": ...}, and
{"stop": true}. From the child, one line per message: {"id", "wamid"}, {"id", "error": {...}} (Meta's
error, or the connection's), {"id", "invalid": words} or, after a stop, {"id", "unstarted": true} for
those it never began. The child ends when its input closes, which a killed server's does too: it starts
nothing more and lets the calls already out finish (what the server released is in its journal, so their
recipients are `unknown` after the restart, matched if Meta's status arrives). No parent-death signal:
Linux sends it when the thread that started the child ends, not the process.

Only the standard library and the Graph client are imported here, so the child starts in a fifth of a
second.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import httpx

from sigdesk.whatsapp.client import GraphClient, send_stored
from sigdesk.whatsapp.errors import GraphError

log = logging.getLogger(__name__)

FLAG = "--broadcast-sender"  # the frozen executable's way in (packaging/sigdesk_main.py)
RETIRE_SECONDS = 35.0  # an old client is closed this long after a new one came: its calls finish first
STOP_SECONDS = 5.0  # after a stop, calls still out may answer this long
START_SECONDS = 15.0  # the most the engine waits for the child to be ready, or to take a new client
LOST = "the sending process stopped while this message was on its way"
GRAPH_FIELDS = ("status", "code", "subcode", "title", "details", "fbtrace_id", "transport", "refused")


def command() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, FLAG]
    return [sys.executable, "-m", "sigdesk.broadcasts.sender"]


# --- the answers on the wire ----------------------------------------------------------------------------


def to_wire(message_id: int, outcome: str | Exception) -> dict[str, Any]:
    if isinstance(outcome, str):
        return {"id": message_id, "wamid": outcome}
    if isinstance(outcome, GraphError):
        error = {name: getattr(outcome, name) for name in GRAPH_FIELDS}
        error["message"] = str(outcome.args[0]) if outcome.args else ""
        error["not_sent"] = isinstance(outcome.__cause__, (httpx.ConnectError, httpx.ProxyError))
        return {"id": message_id, "error": error}
    if isinstance(outcome, ValueError):
        return {"id": message_id, "invalid": str(outcome)}
    # anything else happened after the request may have left: the engine takes it as maybe sent
    return {"id": message_id, "error": {"message": f"{type(outcome).__name__} while sending", "transport": True}}


def from_wire(answer: dict[str, Any]) -> str | Exception | None:
    """The outcome of a call as the engine records it; None for a message never started."""
    if "wamid" in answer:
        return str(answer["wamid"])
    if "invalid" in answer:
        return ValueError(str(answer["invalid"]))
    if "error" in answer:
        fields = dict(answer["error"])
        not_sent = fields.pop("not_sent", False)
        error = GraphError(str(fields.pop("message", "")), **{k: v for k, v in fields.items() if k in GRAPH_FIELDS})
        if not_sent:  # the connection was never made: the engine may send it again
            error.__cause__ = httpx.ConnectError(error.args[0])
        return error
    return None


# --- the child ------------------------------------------------------------------------------------------


def main(source: IO[bytes] | None = None, sink: IO[bytes] | None = None) -> None:
    # the server's stderr is this process's: its lines (codes and statuses, never content) join the server's
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s (sending process): %(message)s"
    )
    source = source or sys.stdin.buffer
    sink = sink or sys.stdout.buffer
    lock = threading.Lock()
    # each job carries the forks of the client current when it came: one per thread, made up front so no
    # call waits for one (a paced second would bunch behind it)
    jobs: queue.Queue[tuple[int, str, list[GraphClient] | None] | None] = queue.Queue()
    client: GraphClient | None = None
    forks: list[GraphClient] | None = None
    size = 1

    def answer(message_id: int, outcome: str | Exception | None) -> None:
        answer_line(to_wire(message_id, outcome) if outcome is not None else {"id": message_id, "unstarted": True})

    def answer_line(line: dict[str, Any]) -> None:
        data = json.dumps(line).encode() + b"\n"
        with lock:
            try:
                sink.write(data)
                sink.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the engine is gone; what it released is in its journal

    def work(number: int) -> None:
        while (job := jobs.get()) is not None:
            message_id, payload, clients = job
            try:
                outcome = send_stored(clients[number] if clients else None, payload)
            except Exception as exc:  # noqa: BLE001 - answered as maybe sent, never lost
                outcome = exc
            answer(message_id, outcome)

    threads: list[threading.Thread] = []
    for line in source:
        order = json.loads(line)
        if "threads" in order:
            size = max(1, int(order["threads"]))
            threads = [
                threading.Thread(target=work, args=(number,), name=f"sigdesk-broadcast-send_{number}", daemon=True)
                for number in range(size)
            ]
            for thread in threads:
                thread.start()
            answer_line({"ready": True})
        elif "client" in order:
            old, client = client, GraphClient.from_recipe(order["client"]) if order["client"] else None
            forks = [client.fork() for _ in range(size)] if client is not None else None
            if old is not None:
                threading.Timer(RETIRE_SECONDS, old.close).start()  # closes its forks too
            answer_line({"configured": True})
        elif "send" in order:
            jobs.put((int(order["send"]), order.get("payload") or "", forks))
        elif order.get("stop"):
            break
    while True:  # stopped, or the engine is gone: what never began goes back
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is not None:
            answer(job[0], None)
    for _ in threads:
        jobs.put(None)
    deadline = time.monotonic() + STOP_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    try:
        sink.flush()
    except OSError:
        pass
    os._exit(0)  # threads still waiting on Meta end with the process


# --- the engine's side ----------------------------------------------------------------------------------


class SenderProcess:
    """The child as the engine sees it: prepare it (started, holding the current client), hand over a call,
    hear its outcome through `answered(id, outcome)` (None: never started). A child that dies takes its
    calls with it: each is answered as maybe sent."""

    def __init__(self, threads: int, answered: Callable[[int, str | Exception | None], None]) -> None:
        self.threads = threads
        self.answered = answered
        self._lock = threading.Lock()  # _process and _out; never held while waiting on the child
        self._setup = threading.Lock()  # one start or configuration at a time
        self._process: subprocess.Popen | None = None
        self._out: dict[int, subprocess.Popen] = {}  # handed over, not answered: by which child
        self._client: dict[str, Any] | None | bool = False  # the recipe the child holds; False: none yet
        self._ready = threading.Event()
        self._configured = threading.Event()

    @property
    def started(self) -> bool:
        return self._running() is not None

    def _running(self) -> subprocess.Popen | None:
        with self._lock:
            process = self._process
        return process if process is not None and process.poll() is None else None

    def start(self, wait: float = 0.0) -> bool:
        """Start the child if it is not running (it takes a fifth of a second to be ready); True once ready."""
        with self._setup:
            if self._running() is None:
                self._ready.clear()
                process = subprocess.Popen(command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
                with self._lock:
                    self._process, self._client = process, False
                threading.Thread(
                    target=self._read, args=(process,), name="sigdesk-broadcast-answers", daemon=True
                ).start()
                self._write(process, {"threads": self.threads})
        ready = self._ready.wait(wait)
        if wait and not ready:
            log.error("the broadcast sending process did not start (%s); broadcasts wait for it", command()[-1])
        return ready

    def prepare(self, recipe: dict[str, Any] | None, start: bool = True) -> bool:
        """The child running, ready and holding this client (its threads' forks made) before a call is
        handed over: a call waiting on either after its start was paced would bunch with the next ones.
        The engine passes the same recipe object until its client changes. With start=False, only a child
        already started is configured (handing a client over ahead never outlives a stop)."""
        if not (self.start(wait=START_SECONDS) if start else self._ready.wait(START_SECONDS)):
            return False
        with self._setup:
            process = self._running()
            if process is None:
                return False
            if recipe is not self._client:
                self._configured.clear()
                if not self._write(process, {"client": recipe}) or not self._configured.wait(START_SECONDS):
                    return False
                self._client = recipe
        return True

    @staticmethod
    def _write(process: subprocess.Popen, order: dict[str, Any]) -> bool:
        try:
            assert process.stdin is not None
            process.stdin.write(json.dumps(order).encode() + b"\n")
            process.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def send(self, message_id: int, payload: str | None) -> bool:
        """Hand one call over to the prepared child; False when it could not be (it never left)."""
        process = self._running()
        if process is None:
            return False
        with self._lock:
            self._out[message_id] = process
        if self._write(process, {"send": message_id, "payload": payload or ""}):
            return True
        with self._lock:
            self._out.pop(message_id, None)
        return False

    def _read(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                answer = json.loads(line)
                if answer.get("ready"):
                    self._ready.set()
                    continue
                if answer.get("configured"):
                    self._configured.set()
                    continue
                message_id = int(answer["id"])
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("the broadcast sending process wrote a line that is no answer")
                continue
            with self._lock:
                self._out.pop(message_id, None)
            self.answered(message_id, from_wire(answer))
        process.wait()
        with self._lock:
            lost = [message_id for message_id, child in self._out.items() if child is process]
            for message_id in lost:
                del self._out[message_id]
            if self._process is process:
                self._process = None
        for message_id in lost:
            self.answered(message_id, GraphError(LOST, transport=True))

    def stop(self) -> None:
        """No new calls: those not begun are answered unstarted; calls out finish within STOP_SECONDS."""
        with self._setup:
            with self._lock:
                process, self._process = self._process, None
            if process is not None and process.poll() is None:
                self._write(process, {"stop": True})
                try:
                    assert process.stdin is not None
                    process.stdin.close()
                except OSError:
                    pass


if __name__ == "__main__":
    main()
