"""The broadcast engine: sends running campaigns, paced inside Meta's limits, on its own worker loop.

Three kinds of thread share the work. The loop (Worker.add_loop "broadcasts") does every database step:
it starts scheduled campaigns, resumes those the messaging limit paused, turns pending recipients into
queued messages (re-checking who may receive, filling the variables, one transaction per batch), claims
a few messages ahead of their turn and records Meta's answers in batches. The dispatcher releases claimed
messages at the pace of the campaign's and the number's token buckets and knows no database, so a slow
write never bunches sends. A child process makes the HTTP calls (sigdesk.broadcasts.sender), so they do
not compete with the database work for this process's interpreter lock.

Every message goes through outbound's claim / call / record, like the inbox's: the same payload, the same
message.sent events, the same opt-out on 131050. A claim is committed before its call, a fraction of a
second ahead of its token, so a crash leaves claimed messages that may or may not have left.

The release journal (`<data dir>/broadcasts.journal`, 0600) tells them apart. The dispatcher appends each
message's id ("id\n", one os.write per released batch on an O_APPEND descriptor) before handing it to the
sending process for its HTTP call. At start, before the loop claims anything, recover() reads it: a claimed
message ('sending', no wamid) whose id is in the journal may have reached Meta, so its recipient becomes `unknown`
and it is never sent again (a status webhook with our callback data still adopts it); one whose id is not
there never left, so it goes back to 'queued' (its recipient stays 'sending') and is sent as usual. Then
the journal is emptied; it is emptied again, when it grows, at a moment nothing released is unrecorded.
A journal that is missing, unreadable, torn or written during an earlier boot of the machine counts as
knowing nothing: every claimed message is `unknown` (never risk a duplicate).

No fsync: a killed process loses nothing the operating system already has, and an fsync per released
batch (hundreds a second at 500/s) would cost milliseconds each on a laptop disk and bunch the sends. A
power cut or OS crash could lose the last lines, which would make a sent message look unsent; the boot id
in the journal's first line catches that case instead: after a reboot the journal is not trusted and
every claimed message is `unknown`, as without a journal.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.broadcasts import audience, commands, limits, variables
from sigdesk.broadcasts.sender import SenderProcess
from sigdesk.db import WRITER_OPTION, Database, read_json, update_rows, utcnow, write_lock
from sigdesk.errors import UserError
from sigdesk.events.catalogue import BroadcastProgressed, MessageQueued
from sigdesk.events.outbox import record
from sigdesk.general.clock import business_zone, format_moment
from sigdesk.message_templates import services as message_templates
from sigdesk.models import Contact, Conversation, Message, MessageStatus, Template
from sigdesk.models.broadcast import RECIPIENT_RANK, Broadcast, BroadcastRecipient
from sigdesk.outbound import services as outbound
from sigdesk.whatsapp.errors import GraphError

log = logging.getLogger(__name__)

SYSTEM = Actor.system()
THROUGHPUT = 130429
PAIR_RATE = 131056
USER_MARKETING_LIMIT = 131049
SPAM_LIMIT = 131048
OPTED_OUT = 131050
CANNOT_RECEIVE = 131026
TEMPLATE_MISSING = 132001
QUALITY_CODES = frozenset({SPAM_LIMIT, 132015, 132016})
ACCESS_CODES = frozenset({190, 10, 200})
# 131049: Meta holds marketing back from this customer for a while; try again later, then give up.
USER_LIMIT_RETRIES = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=12))
PAIR_RETRY = timedelta(seconds=limits.PAIR_SECONDS)
HOUSEKEEPING_SECONDS = 0.5
SETTINGS_EVERY_SECONDS = 5.0
# Claimed ahead of their tokens: enough to cover the longest recent pass of this loop (measured; a pass
# that makes a batch takes 0.1-0.2 s on MariaDB at 500/s), so the dispatcher never waits on a database
# write; little enough that a crash leaves few `unknown` that never left (at most this many seconds' worth).
CLAIM_AHEAD_SECONDS = 0.25
MAX_CLAIM_AHEAD_SECONDS = 0.4
PREPARE_AHEAD_SECONDS = 0.25
MAX_BATCH = 500
RECORD_EVERY_SECONDS = 0.1
SLOW_DOWN_HOLD = 1.0
RECOVER_EVERY_SECONDS = 5.0
# Calls out at once (the sending process's threads, each with a connection): Meta takes a fifth of a second
# or more per call, and 500/s needs a hundred waiting (tests/perf/bench_broadcast.py --graph-delay 0.2).
POOL_SIZE = 128
JOURNAL_NAME = "broadcasts.journal"
JOURNAL_COMPACT_BYTES = 256 * 1024  # emptied when larger, at a quiet moment
INTERRUPTED_REASON = "SigDesk stopped while this message was being sent; it is not sent again"

NOT_CONNECTED = (
    "WhatsApp is not connected, so the broadcast is paused: set the access token and phone number ID in "
    "Settings → Connection, then resume."
)
MAYBE_SENT = (
    "SigDesk lost the connection while this message was on its way, so it may or may not have reached the "
    "customer; it is not sent again."
)


def lower_states(state: str) -> list[str]:
    """The states a recipient may leave for `state` (forward only)."""
    return [name for name, rank in RECIPIENT_RANK.items() if rank < RECIPIENT_RANK[state]]


def _reading(session: Session) -> None:
    """Begin a plain (deferred) transaction: the loop's sessions would otherwise take SQLite's write lock at
    once, holding back the inbox's writers while the engine only reads."""
    session.commit()
    session.connection(execution_options={WRITER_OPTION: False})


def below(column: Any, state: str) -> Any:
    """`column` holds a state a recipient may leave for `state`; plain equalities, so it runs executemany."""
    return or_(*(column == name for name in lower_states(state)))


def _maybe_delivered(error: GraphError) -> bool:
    """A lost connection after the request left may still have reached Meta: never resend those."""
    if not error.transport or error.refused:
        return False
    return not isinstance(error.__cause__, (httpx.ConnectError, httpx.ProxyError))


def boot_id() -> str:
    """Which boot of the machine this is: a journal written during an earlier boot may have lost its last
    lines to a power cut. Linux names each boot; elsewhere the boot moment, to the ten seconds."""
    try:
        return "id " + Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return f"at {round((time.time() - time.monotonic()) / 10)}"


class Journal:
    """The release journal: ids of messages handed over for their call (see the module docstring).
    Appends from the dispatcher and emptying from the loop take one lock."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._fd: int | None = None
        self.broken = False  # a write failed and the file was removed: the next start trusts nothing

    @property
    def header(self) -> str:
        return f"sigdesk broadcasts journal; boot {boot_id()}\n"

    def released(self) -> set[int] | None:
        """The ids the journal holds, or None when it cannot be trusted (missing, unreadable, torn, from an
        earlier boot): then every claimed message may have left."""
        if self.path is None:
            return None
        try:
            text = self.path.read_bytes().decode("ascii")
        except (OSError, UnicodeDecodeError):
            return None
        lines = text.split("\n")
        if len(lines) < 2 or lines[-1] != "" or lines[0] + "\n" != self.header:
            return None
        try:
            return {int(line) for line in lines[1:-1]}
        except ValueError:
            return None

    def _open(self) -> int:
        if self._fd is None:
            assert self.path is not None
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
            self._fd = os.open(self.path, flags, 0o600)
            if hasattr(os, "fchmod"):  # also one made by hand or by an older copy
                os.fchmod(self._fd, 0o600)
            if os.fstat(self._fd).st_size == 0:
                os.write(self._fd, self.header.encode("ascii"))
        return self._fd

    def open(self) -> None:
        """Append from here on; never empties an existing journal (reset() does, when that is safe)."""
        if self.path is not None and not self.broken:
            with self.lock:
                self._open()

    def reset(self, safe: Callable[[], bool] = lambda: True) -> bool:
        """Empty it, if `safe()` (asked under the lock the dispatcher writes under) says no released
        message is left unrecorded; a broken journal starts again as a new file."""
        if self.path is None:
            return False
        with self.lock:
            if not safe():
                return False
            if self.broken:
                self._close()
                self.broken = False
            fd = self._open()
            os.ftruncate(fd, 0)
            os.write(fd, self.header.encode("ascii"))
            return True

    def size(self) -> int:
        fd = self._fd
        return os.fstat(fd).st_size if fd is not None else 0

    def write(self, ids: list[int]) -> bool:
        """Record these ids before their calls (one write for the batch). False when they could not be
        recorded and the file could not be taken away either: then they must not leave yet."""
        if self.path is None:
            return True
        line = "".join(f"{message_id}\n" for message_id in ids).encode("ascii")
        with self.lock:
            if self.broken:
                return True
            try:
                if os.write(self._open(), line) == len(line):
                    return True
            except OSError:
                log.exception("the broadcast journal could not be written")
            # short or failed: remove the file, so the next start trusts nothing (every claimed message
            # unknown); sending goes on without a journal until the loop starts a new one
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                log.exception("the broadcast journal could not be removed; sends are held back")
                return False
            self.broken = True
            return True

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self.lock:
            self._close()


@dataclass
class Run:
    """A running campaign as the engine holds it between passes."""

    id: int
    rate: int
    bucket: limits.TokenBucket
    effective: float
    # counts the calls as they really start, so a stalled thread cannot crowd one second at Meta
    starts: limits.StartWindow = field(default_factory=lambda: limits.StartWindow(1))
    ready: deque[int] = field(default_factory=deque)  # queued messages, not claimed yet
    claimed: deque[outbound.Claimed] = field(default_factory=deque)  # claimed, waiting for their token
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: bool = False
    in_flight: int = 0
    hold_until: float = 0.0  # monotonic: no sends before (after a 130429)
    slowed_at: float = 0.0
    waiting: bool = False  # nothing to prepare now (deferred recipients, retries later, limit)


@dataclass(frozen=True)
class Answer:
    run: Run
    message_id: int
    outcome: str | Exception

    @property
    def broadcast_id(self) -> int:
        return self.run.id


class Engine:
    def __init__(
        self,
        database: Database,
        sender_for: Callable[[Session], Any],
        clock: Callable[[], datetime] = utcnow,
        pool_size: int = POOL_SIZE,
        journal: Path | None = None,
    ) -> None:
        self.database = database
        self.journal = Journal(journal)
        self._recovered = False
        self.sender_for = sender_for
        self.clock = clock
        self.pool_size = pool_size
        self.runs: dict[int, Run] = {}
        self.stopping: dict[int, Run] = {}
        self.window = limits.MessagingWindow()
        self.answers: queue.Queue[Answer] = queue.Queue()
        self.wake = threading.Event()
        self._refresh = threading.Event()
        self._new_sender = threading.Event()
        self._sender: Any = None
        self._recipe: tuple[Any, dict[str, Any] | None] = (None, None)  # the sender, as the child makes it
        self._calls = SenderProcess(pool_size, self._answered)
        self._out: dict[int, Run] = {}  # handed to the sending process, not answered
        self._out_lock = threading.Lock()
        self._dispatcher: threading.Thread | None = None
        self._dispatch_stop = threading.Event()
        self._dispatch_wake = threading.Event()
        self._phone: limits.TokenBucket | None = None
        self._housekept = float("-inf")
        self._recorded = time.monotonic()
        self._steps: deque[float] = deque(maxlen=20)  # how long the last passes took
        self._settings_read = float("-inf")
        self._refused_starts: set[int] = set()
        self.settings: dict[str, Any] = {}

    # --- wiring -----------------------------------------------------------------------------------------
    def changed(self, _event: Any = None) -> None:
        """A campaign changed (started, paused, resumed, cancelled): look again now."""
        self._refresh.set()
        self.wake.set()

    def settings_changed(self, _event: Any = None) -> None:
        self._settings_read = float("-inf")
        self._new_sender.set()
        self.changed()

    def interrupt(self) -> None:
        self.wake.set()

    def run(self, stop: threading.Event) -> None:
        """The worker loop: passes until stopped, quickly while campaigns run, idly otherwise. Crash recovery
        comes first, on this thread, so nothing is claimed before the journal has been read."""
        if not self._recovered:
            with self.database.session() as session, write_lock(session):
                self.recover(session)
                session.commit()
            self.journal.reset()
            self._recovered = True
        self._start_threads()
        try:
            while not stop.is_set():
                busy = self.step()
                self.wake.wait(0.005 if busy else (0.05 if self.runs or self.stopping else 1.0))
                self.wake.clear()
        finally:
            self.shutdown()

    def _start_threads(self) -> None:
        self.journal.open()
        if self._dispatcher is None or not self._dispatcher.is_alive():
            self._dispatch_stop.clear()
            self._dispatcher = threading.Thread(target=self._dispatch, name="sigdesk-broadcast-pace", daemon=True)
            self._dispatcher.start()

    def shutdown(self, wait: float = 0.5) -> None:
        """Stop releasing sends; give back claims that never left; record what comes back within `wait`.
        Short, so it ends within the worker's join of its loops (jobs.LOOP_JOIN_SECONDS); a call still out
        after it is found `unknown` at the next start, never resent."""
        self._dispatch_stop.set()
        self._dispatch_wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(2)
            self._dispatcher = None
        self._calls.stop()  # what it never began comes back (given back in _answered), as if never claimed
        for run in list(self.runs.values()):
            self._stop_run(run)
        deadline = time.monotonic() + wait
        while any(run.in_flight for run in self.stopping.values()) and time.monotonic() < deadline:
            time.sleep(0.02)
            self._record_answers(force=True)
        self._record_answers(force=True)
        self._replace_sender(None, reconnect=False)
        self.journal.close()

    # --- crash recovery ---------------------------------------------------------------------------------
    def recover(self, session: Session) -> int:
        """At start, before the loop claims anything (outbound.recover_interrupted leaves broadcast messages
        to this): a claimed message the journal says was released may have reached Meta, so its recipient is
        `unknown` and it is never resent; one it does not name never left and goes back to 'queued' (a
        cancelled campaign's is withdrawn). Without a trustworthy journal every claimed one is `unknown`.
        Answers how many recipients became unknown; the caller commits, then empties the journal."""
        released = self.journal.released()
        claimed = session.execute(
            select(Message.id, Broadcast.status)
            .join(Broadcast, Broadcast.id == Message.broadcast_id)
            .where(Message.status == MessageStatus.SENDING.value, Message.wamid.is_(None))
        ).all()
        left = [row.id for row in claimed if released is None or row.id in released]
        kept = [row.id for row in claimed if released is not None and row.id not in released]
        for start in range(0, len(left), 1000):
            session.execute(
                update(Message)
                .where(Message.id.in_(left[start : start + 1000]), Message.status == MessageStatus.SENDING.value)
                .values(status=MessageStatus.FAILED.value, error_explanation=outbound.INTERRUPTED, next_attempt_at=None)
                .execution_options(synchronize_session=False)
            )
        for start in range(0, len(kept), 1000):
            session.execute(
                update(Message)
                .where(Message.id.in_(kept[start : start + 1000]), Message.status == MessageStatus.SENDING.value)
                .values(status=MessageStatus.QUEUED.value, attempts=Message.attempts - 1)
                .execution_options(synchronize_session=False)
            )
        cancelled = [
            row.id for row in claimed if released is not None and row.id not in released and row.status == "cancelled"
        ]
        withdrawn = commands.withdraw_messages(session, cancelled)
        # every interrupted one: just now, or by an older SigDesk's recover_interrupted
        interrupted = list(
            session.scalars(
                select(BroadcastRecipient.id)
                .join(Message, Message.id == BroadcastRecipient.message_id)
                .where(
                    BroadcastRecipient.state == "sending",
                    Message.status == MessageStatus.FAILED.value,
                    Message.error_explanation == outbound.INTERRUPTED,
                )
            )
        )
        moved = 0
        for start in range(0, len(interrupted), 1000):
            moved += (
                session.execute(
                    update(BroadcastRecipient)
                    .where(
                        BroadcastRecipient.id.in_(interrupted[start : start + 1000]),
                        BroadcastRecipient.state == "sending",
                    )
                    .values(state="unknown", reason=INTERRUPTED_REASON, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                ).rowcount
                or 0
            )
        if claimed:
            log.info(
                "after a stop, %s claimed broadcast messages had been released and are unknown, %s are sent again%s",
                len(left),
                len(kept) - len(withdrawn),
                "" if released is not None else " (no trustworthy journal)",
            )
        return moved

    # --- one pass ---------------------------------------------------------------------------------------
    def step(self) -> bool:
        """Housekeeping when due, record answers, keep every run's claimed messages topped up."""
        mono = time.monotonic()
        try:
            return self._step(mono)
        finally:
            self._steps.append(time.monotonic() - mono)

    def _step(self, mono: float) -> bool:
        busy = False
        if self._refresh.is_set() or mono - self._housekept >= HOUSEKEEPING_SECONDS:
            self._refresh.clear()
            self._housekept = mono
            self.housekeep()
        busy |= self._record_answers()
        for run in list(self.runs.values()):
            busy |= self._top_up(run)
        self._finish_stopped()
        self._compact_journal()
        return busy

    def _compact_journal(self) -> None:
        """Empty a grown (or broken) journal while every released message is recorded: the dispatcher raises
        in_flight before it writes, and writes under the journal's lock, so none is lost in between."""
        if not self._recovered or not (self.journal.broken or self.journal.size() > JOURNAL_COMPACT_BYTES):
            return

        def quiet() -> bool:
            runs = list(self.runs.values()) + list(self.stopping.values())
            return not any(run.in_flight for run in runs) and self.answers.empty()

        self.journal.reset(quiet)

    def drain(self, timeout: float = 30.0, until: Callable[[], bool] | None = None) -> None:
        """For tests and the CLI: run passes (with the dispatcher) until nothing is running or `until()`."""
        self._start_threads()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.step()
                if until is not None and until():
                    return
                if until is None and not self.runs and not self.stopping:
                    return
                time.sleep(0.005)
            raise TimeoutError("the broadcast engine did not finish in time")
        finally:
            self.shutdown()

    # --- housekeeping -----------------------------------------------------------------------------------
    def housekeep(self) -> None:
        now = self.clock()
        with self.database.session() as session:
            if time.monotonic() - self._settings_read >= SETTINGS_EVERY_SECONDS or self._new_sender.is_set():
                _reading(session)
                self._read_settings(session)
                self._settings_read = time.monotonic()
            self._start_due(session, now)
            self._resume_limited(session, now)
            _reading(session)
            running = list(session.scalars(select(Broadcast).where(Broadcast.status == "running")))
            if not self._calls.started and (running or self._campaign_ahead(session)):
                self._calls.start()  # booting while the campaign is drafted or frozen: ready for its first call
                if self._sender is None:
                    self._new_sender.set()  # and the client it will call with, handed over below
            session.commit()
            for broadcast in running:
                if self._template_stops(session, broadcast):
                    continue
                if broadcast.id not in self.runs:
                    self._begin(broadcast)
                else:
                    run = self.runs[broadcast.id]
                    if run.rate != broadcast.rate_per_second:
                        run.rate = broadcast.rate_per_second
                        run.effective = min(run.effective, run.rate) if run.slowed_at else run.rate
                        run.bucket.set_rate(run.effective)
                        run.starts.set_rate(run.effective)
                    run.waiting = False
            still = {broadcast.id for broadcast in running}
            for broadcast_id in [key for key in self.runs if key not in still]:
                self._stop_run(self.runs[broadcast_id])
            for run in self.runs.values():
                self._recover_rate(run)
        if self._new_sender.is_set():
            self._new_sender.clear()
            self._replace_sender(None)
        self._hand_over_client()
        if self.runs and self._sender is None:
            with self.database.session() as session:
                for broadcast_id in list(self.runs):
                    self._pause(session, broadcast_id, "access", NOT_CONNECTED)

    @staticmethod
    def _campaign_ahead(session: Session) -> bool:
        """A broadcast that may start sending: the sending process starts then, not for every server."""
        waiting = Broadcast.status.in_(("draft", "scheduled", "paused"))
        return session.scalar(select(Broadcast.id).where(waiting).limit(1)) is not None

    def _read_settings(self, session: Session) -> None:
        self.settings = {
            "phone": limits.setting(session, "whatsapp.phone_number_id"),
            "throughput": int(limits.setting(session, "whatsapp.throughput")),
            "tier": str(limits.setting(session, "whatsapp.messaging_limit")),
        }
        phone = str(self.settings["phone"] or "none")
        self._phone = limits.phone_bucket(phone, self.settings["throughput"])

    def _start_due(self, session: Session, now: datetime) -> None:
        _reading(session)
        due = list(
            session.scalars(select(Broadcast.id).where(Broadcast.status == "scheduled", Broadcast.scheduled_at <= now))
        )
        session.commit()
        for broadcast_id in due:
            if broadcast_id in self._refused_starts:
                continue
            try:
                with write_lock(session):
                    commands.start(session, SYSTEM, broadcast_id, now)
                    session.commit()
            except UserError as refused:
                session.rollback()
                self._refused_starts.add(broadcast_id)
                log.warning("scheduled broadcast %s could not start: %s", broadcast_id, refused)

    def _resume_limited(self, session: Session, now: datetime) -> None:
        _reading(session)
        due = list(
            session.scalars(
                select(Broadcast.id).where(
                    Broadcast.status == "paused", Broadcast.pause_kind == "limit", Broadcast.resume_at <= now
                )
            )
        )
        session.commit()
        for broadcast_id in due:
            with write_lock(session):
                commands.resume_by_system(session, broadcast_id, now)
                session.commit()

    def _template_stops(self, session: Session, broadcast: Broadcast) -> bool:
        """A template paused or disabled for quality, or gone, pauses the campaign (a template webhook or a
        sync changed it)."""
        _reading(session)
        template = self._template(session, broadcast)
        status = ((template.status if template is not None else None) or "DELETED").upper()
        session.commit()
        if status == "APPROVED":
            return False
        if status in ("PAUSED", "DISABLED"):
            reason = (
                f"Meta {status.lower()} the template '{broadcast.template_name}' for low quality. Edit it or choose "
                "another, then resume."
            )
            self._pause(session, broadcast.id, "quality", reason)
        else:
            reason = (
                f"The template '{broadcast.template_name}' ({broadcast.template_language}) is "
                f"{status.lower().replace('_', ' ')} at Meta, so it cannot be sent. Sync templates, then resume."
            )
            self._pause(session, broadcast.id, "template", reason)
        return True

    @staticmethod
    def _template(session: Session, broadcast: Broadcast) -> Template | None:
        return session.scalar(
            select(Template).where(
                Template.name == broadcast.template_name, Template.language == broadcast.template_language
            )
        )

    def _pause(
        self, session: Session, broadcast_id: int, kind: str, reason: str, resume_at: datetime | None = None
    ) -> None:
        with write_lock(session):
            if commands.pause_by_system(session, broadcast_id, kind, reason, resume_at) and kind == "quality":
                record_by(session, SYSTEM, "broadcast.quality_alert", f"broadcast {broadcast_id}", {"reason": reason})
            session.commit()
        run = self.runs.get(broadcast_id)
        if run is not None:
            self._stop_run(run)

    def _begin(self, broadcast: Broadcast) -> None:
        rate = max(1, broadcast.rate_per_second or 1)
        self.runs[broadcast.id] = Run(
            broadcast.id, rate, limits.TokenBucket(rate), float(rate), limits.StartWindow(rate)
        )
        if self._sender is None:
            self._new_sender.set()
        self._refused_starts.discard(broadcast.id)

    def _recover_rate(self, run: Run) -> None:
        """After a 130429 the pace was halved; it climbs back a tenth of the chosen rate every few seconds."""
        if run.slowed_at and run.effective < run.rate and time.monotonic() - run.slowed_at >= RECOVER_EVERY_SECONDS:
            run.effective = min(float(run.rate), run.effective + max(1.0, run.rate / 10))
            run.slowed_at = time.monotonic() if run.effective < run.rate else 0.0
            run.bucket.set_rate(run.effective)
            run.starts.set_rate(run.effective)

    def _hand_over_client(self) -> None:
        """Give the sending process the current client ahead of the first call (it makes one per thread, a
        fifth of a second): a campaign's first sends then leave as soon as they are claimed."""
        if self._sender is None or self._recipe[0] is self._sender or not self._calls.started:
            return
        recipe = self._current_recipe()  # what _submit hands over too: the same object, so no second setup
        threading.Thread(
            target=self._calls.prepare, args=(recipe, False), name="sigdesk-broadcast-setup", daemon=True
        ).start()

    def _current_recipe(self) -> dict[str, Any] | None:
        """The current client as the sending process makes it, one recipe object per client: the process
        is set up again only when the object changes (SenderProcess.prepare)."""
        sender = self._sender
        held, recipe = self._recipe
        if held is not sender:
            recipe = sender.recipe() if sender is not None else None
            self._recipe = (sender, recipe)
        return recipe

    def _replace_sender(self, session: Session | None, reconnect: bool = True) -> None:
        old = self._sender
        if not reconnect:
            self._sender = None
        elif session is None:
            with self.database.session(write=False) as reading:
                self._sender = self.sender_for(reading)
        else:
            self._sender = self.sender_for(session)
        if old is not None and hasattr(old, "close"):
            closer = threading.Timer(35.0, old.close)  # calls in flight on it finish first
            closer.daemon = True
            closer.start()

    # --- stopping a run ---------------------------------------------------------------------------------
    def _stop_run(self, run: Run) -> None:
        """Paused, cancelled or completed elsewhere: claims that never left go back to queued (or, for a
        cancelled campaign, are withdrawn); calls in flight finish and are recorded."""
        with run.lock:
            run.stopped = True
            held = [claimed.id for claimed in run.claimed]
            run.claimed.clear()
        run.ready.clear()
        self.runs.pop(run.id, None)
        self.stopping[run.id] = run
        self._unclaim(held, run.id)

    def _finish_stopped(self) -> None:
        for broadcast_id in [key for key, run in self.stopping.items() if run.in_flight <= 0]:
            del self.stopping[broadcast_id]

    # --- preparing and claiming -------------------------------------------------------------------------
    def _top_up(self, run: Run) -> bool:
        """Keep CLAIM_AHEAD_SECONDS of sends claimed, preparing PREPARE_AHEAD_SECONDS of messages ahead."""
        if run.stopped or time.monotonic() < run.hold_until:
            return False
        ahead = min(MAX_CLAIM_AHEAD_SECONDS, max(CLAIM_AHEAD_SECONDS, 1.5 * max(self._steps, default=0.0)))
        claim_target = max(2, int(run.effective * ahead) + 1)
        # refilled a quarter at a time: a claim is a transaction, and on MySQL a few round trips
        if len(run.claimed) > claim_target - max(1, claim_target // 4):
            return False
        if not run.ready and not run.waiting:
            self._prepare(run)
            if not run.ready and not run.claimed and not run.in_flight and not run.stopped:
                self._maybe_complete(run)
        if not run.ready:
            return False
        wanted = [run.ready.popleft() for _ in range(min(len(run.ready), claim_target - len(run.claimed)))]
        with self.database.session() as session:
            claimed = outbound.claim(session, wanted)
        with run.lock:
            if run.stopped:
                stale = claimed
            else:
                run.claimed.extend(claimed)
                stale = []
        if stale:
            self._give_back(stale)
        self._dispatch_wake.set()
        return True

    def _give_back(self, claimed: list[outbound.Claimed]) -> None:
        self._unclaim([item.id for item in claimed])

    def _unclaim(self, held: list[int], broadcast_id: int | None = None) -> None:
        """Claimed messages that never left go back to queued. A cancelled campaign's queued messages are
        withdrawn and their recipients skipped, as cancel() does (again here: one prepared while the cancel
        committed is caught too)."""
        with self.database.session() as session, write_lock(session):
            if held:
                session.execute(
                    update(Message)
                    .where(
                        Message.id.in_(held),
                        Message.status == MessageStatus.SENDING.value,
                        Message.wamid.is_(None),
                    )
                    .values(status=MessageStatus.QUEUED.value, attempts=Message.attempts - 1)
                    .execution_options(synchronize_session=False)
                )
            mine = Message.id.in_(held) if broadcast_id is None else Message.broadcast_id == broadcast_id
            cancelled = list(
                session.scalars(
                    select(Message.id)
                    .join(Broadcast, Broadcast.id == Message.broadcast_id)
                    .where(mine, Broadcast.status == "cancelled", Message.status == MessageStatus.QUEUED.value)
                )
            )
            commands.withdraw_messages(session, cancelled)
            session.commit()

    def _prepare(self, run: Run) -> None:
        """Fill run.ready: messages of the campaign queued and due (retries, leftovers of a stop), then new
        messages for pending recipients, in one transaction."""
        now = self.clock()
        size = min(MAX_BATCH, max(5, int(run.effective * PREPARE_AHEAD_SECONDS) + 1))
        with self.database.session() as session:
            _reading(session)
            due = list(
                session.scalars(
                    select(Message.id)
                    .join(BroadcastRecipient, BroadcastRecipient.message_id == Message.id)
                    .where(
                        BroadcastRecipient.broadcast_id == run.id,
                        BroadcastRecipient.state == "sending",
                        Message.status == MessageStatus.QUEUED.value,
                        Message.next_attempt_at <= now,
                    )
                    .order_by(Message.next_attempt_at, Message.id)
                    .limit(size)
                )
            )
            session.commit()
            run.ready.extend(due)
            if len(due) < size:
                with write_lock(session):
                    made = self._materialize(session, run, size - len(due), now)
                    session.commit()
                run.ready.extend(made)
        if not run.ready:
            run.waiting = True  # until the next housekeeping pass

    def _materialize(self, session: Session, run: Run, size: int, now: datetime) -> list[int]:
        # a locking read: a pause or cancel committing meanwhile waits for this batch, then sees its messages
        broadcast = session.scalar(
            select(Broadcast).where(Broadcast.id == run.id).with_for_update().execution_options(populate_existing=True)
        )
        if broadcast is None or broadcast.status != "running":
            return []
        rows = session.execute(
            select(BroadcastRecipient.id, BroadcastRecipient.contact_id)
            .where(
                BroadcastRecipient.broadcast_id == run.id,
                BroadcastRecipient.state == "pending",
                or_(BroadcastRecipient.next_attempt_at.is_(None), BroadcastRecipient.next_attempt_at <= now),
            )
            .order_by(BroadcastRecipient.id)
            .limit(size)
        ).all()
        if not rows:
            return []
        template = self._template(session, broadcast)
        if template is None or (template.status or "").upper() != "APPROVED":
            return []
        self.window.refresh(session, now)
        tier = limits.tier_limit(self.settings.get("tier", "250"))
        verdicts = {
            verdict.contact_id: verdict for verdict in audience.verdicts(session, broadcast, [r[1] for r in rows], now)
        }
        facts = variables.facts_for(session, [r[1] for r in rows])
        # a customer who wrote in the last 24 hours gets a template inside their service window: not
        # business-initiated, so it does not count towards the messaging limit
        answering = set(
            session.scalars(
                select(Contact.id).where(
                    Contact.id.in_([r[1] for r in rows]), Contact.last_inbound_at > now - limits.WINDOW
                )
            )
        )
        given = read_json(broadcast.variables, dict, "broadcasts.variables") if broadcast.variables else {}
        skipped: list[dict[str, Any]] = []
        deferred: list[dict[str, Any]] = []
        chosen: list[tuple[int, int, dict[str, Any]]] = []
        limited = False
        used = self.window.used(now)
        for recipient_id, contact_id in rows:
            verdict = verdicts.get(contact_id)
            if verdict is None or verdict.state != "pending":
                skipped.append({"id": recipient_id, "reason": verdict.reason if verdict else audience.DELETED})
                continue
            ready_at = self.window.pair_ready_at(contact_id, now)
            if ready_at is not None:
                deferred.append({"id": recipient_id, "next_attempt_at": ready_at})
                continue
            initiated = contact_id not in answering
            new = initiated and not self.window.counts(contact_id, now)
            if tier is not None and new and used >= tier:
                limited = True
                break
            filled = variables.fill(given, facts.get(contact_id) or variables.ContactFacts(contact_id=contact_id))
            if isinstance(filled, str):
                skipped.append({"id": recipient_id, "reason": filled})
                continue
            try:
                content = message_templates.template_content(session, template.id, filled)
            except UserError as refused:
                skipped.append({"id": recipient_id, "reason": str(refused)})
                continue
            chosen.append((recipient_id, contact_id, content))
            self.window.note(contact_id, now, initiated=initiated)
            used += new
        conversations = outbound.conversation_ids(session, [contact_id for _, contact_id, _ in chosen], now)
        outgoing = [
            outbound.Outgoing(contact_id, conversations[contact_id], content) for _, contact_id, content in chosen
        ]
        answers = outbound.queue_templates(session, template, outgoing, broadcast_id=run.id, now=now)
        sending: list[dict[str, Any]] = []
        made: list[int] = []
        for (recipient_id, _, _), answer in zip(chosen, answers):
            if isinstance(answer, Message):
                sending.append({"id": recipient_id, "message_id": answer.id})
                made.append(answer.id)
            else:
                skipped.append({"id": recipient_id, "reason": str(answer)})
        self.window.noted(made)
        table = BroadcastRecipient.__table__
        pending = table.c.state == "pending"
        if sending:
            update_rows(session, table, "id", sending, pending, state="sending", next_attempt_at=None, updated_at=now)
            assignees = dict(
                session.execute(
                    select(Conversation.id, Conversation.assignee_id).where(
                        Conversation.id.in_(set(conversations.values()))
                    )
                ).all()
            )
            record(
                session,
                *(
                    MessageQueued(answer.conversation_id, assignees.get(answer.conversation_id), answer.id, "template")
                    for answer in answers
                    if isinstance(answer, Message)
                ),
            )
        if skipped:
            for item in skipped:
                item["reason"] = (item["reason"] or "")[:2000]
            update_rows(session, table, "id", skipped, pending, state="skipped", updated_at=now)
            record(session, BroadcastProgressed(run.id, skipped=len(skipped)))
        if deferred:
            update_rows(session, table, "id", deferred, pending, updated_at=now)
        if limited and not made and not run.ready and not run.claimed and not run.in_flight:
            self._limit_pause(session, run, now)
        return made

    def _limit_pause(self, session: Session, run: Run, now: datetime) -> None:
        tier = self.settings.get("tier", "250")
        resume_at = self.window.frees_at(now) or now + timedelta(minutes=1)
        zone = business_zone(session)
        reason = f"Messaging limit of {int(tier):,} reached; resumes at {format_moment(resume_at, zone, 'time')}"
        commands.pause_by_system(session, run.id, "limit", reason, resume_at)
        with run.lock:
            run.stopped = True
        self.runs.pop(run.id, None)
        self.stopping[run.id] = run

    def _maybe_complete(self, run: Run) -> None:
        with self.database.session() as session:
            _reading(session)
            open_one = session.scalar(
                select(BroadcastRecipient.id)
                .where(BroadcastRecipient.broadcast_id == run.id, BroadcastRecipient.state.in_(("pending", "sending")))
                .limit(1)
            )
            session.commit()
            if open_one is not None:
                return
            with write_lock(session):
                commands.complete(session, run.id)
                session.commit()
        with run.lock:
            run.stopped = True
        self.runs.pop(run.id, None)

    # --- pacing and calls -------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Release claimed messages as the campaign's and the number's buckets allow; no database here."""
        while not self._dispatch_stop.is_set():
            pause = 0.02
            for run in list(self.runs.values()):
                if not run.claimed or run.stopped:
                    continue
                mono = time.monotonic()
                if mono < run.hold_until:
                    pause = min(pause, run.hold_until - mono)
                    continue
                buckets = [run.bucket] + ([self._phone] if self._phone is not None else [])
                with run.lock:
                    if run.stopped:
                        continue
                    count = limits.take_from(buckets, len(run.claimed))
                    batch = [run.claimed.popleft() for _ in range(count)]
                    run.in_flight += count
                if batch and not self.journal.write([claimed.id for claimed in batch]):
                    with run.lock:  # not recorded as released: they must not leave; try again shortly
                        run.claimed.extendleft(reversed(batch))
                        run.in_flight -= len(batch)
                        run.hold_until = time.monotonic() + 1.0
                    continue
                for claimed in batch:
                    self._submit(run, claimed)
                if run.claimed:
                    pause = min(pause, max(bucket.wait_seconds(1) for bucket in buckets))
            if pause > 0:
                self._dispatch_wake.wait(max(0.0005, pause))
                self._dispatch_wake.clear()

    def _submit(self, run: Run, claimed: outbound.Claimed) -> None:
        """Hand the call to the sending process (sigdesk.broadcasts.sender) as the gate lets it start."""
        recipe = self._current_recipe()
        with self._out_lock:
            self._out[claimed.id] = run
        sent = (
            self._calls.prepare(recipe)
            and run.starts.enter(self._dispatch_stop)
            and self._calls.send(claimed.id, claimed.payload)
        )
        if not sent:
            self._answered(claimed.id, None)  # stopping, or no sending process: it never left

    def _answered(self, message_id: int, outcome: str | Exception | None) -> None:
        """The sending process's answer for a call (None: never begun, so it goes back to the queue)."""
        with self._out_lock:
            run = self._out.pop(message_id, None)
        if run is None:
            return
        if outcome is None:
            self._unclaim([message_id])
            with run.lock:
                run.in_flight -= 1
            return
        self.answers.put(Answer(run, message_id, outcome))
        self.wake.set()

    # --- recording --------------------------------------------------------------------------------------
    def _record_answers(self, force: bool = False) -> bool:
        waiting = self.answers.qsize()
        if not waiting:
            return False
        if not force and waiting < 50 and time.monotonic() - self._recorded < RECORD_EVERY_SECONDS:
            return False
        self._recorded = time.monotonic()
        answers: list[Answer] = []
        while True:
            try:
                answers.append(self.answers.get_nowait())
            except queue.Empty:
                break
        if answers:
            self._record(answers)
        return True

    def _record(self, answers: list[Answer]) -> None:
        now = self.clock()
        pauses: dict[int, tuple[str, str]] = {}
        with self.database.session() as session, write_lock(session):
            ids = [answer.message_id for answer in answers]
            recipients = {
                row.message_id: row
                for row in session.execute(
                    select(
                        BroadcastRecipient.id,
                        BroadcastRecipient.message_id,
                        BroadcastRecipient.broadcast_id,
                        BroadcastRecipient.attempts,
                    ).where(BroadcastRecipient.message_id.in_(ids))
                )
            }
            decisions: dict[int, str] = {}

            def policy(message: Message, error: GraphError) -> datetime | bool | None:
                code = error.code
                if error.status == 401 or code in ACCESS_CODES:
                    decisions[message.id] = "access"
                    return now
                if code in QUALITY_CODES:
                    decisions[message.id] = "quality"
                    return now
                if code == TEMPLATE_MISSING:
                    decisions[message.id] = "template"
                    return now
                if code == THROUGHPUT:
                    decisions[message.id] = "throughput"
                    return None
                if code == PAIR_RATE:
                    decisions[message.id] = "pair"
                    return now + max(PAIR_RETRY, outbound.backoff(message.attempts))
                if code == USER_MARKETING_LIMIT:
                    row = recipients.get(message.id)
                    tried = row.attempts if row is not None else 0
                    if tried < len(USER_LIMIT_RETRIES):
                        decisions[message.id] = "held back"
                        return now + USER_LIMIT_RETRIES[tried]
                    return False
                if _maybe_delivered(error):
                    decisions[message.id] = "unknown"
                    return False
                return None

            outcomes = [(answer.message_id, answer.outcome) for answer in answers]
            messages = outbound.record_outcomes(session, outcomes, retry=policy, now=now)
            by_broadcast = {answer.message_id: answer.broadcast_id for answer in answers}
            outcome_of = {answer.message_id: answer.outcome for answer in answers}
            progress: dict[int, dict[str, int]] = {}
            sent: list[int] = []
            failed: list[dict[str, Any]] = []
            unknown: list[int] = []
            retried: list[dict[str, Any]] = []
            table = BroadcastRecipient.__table__
            for message in messages:
                broadcast_id = by_broadcast[message.id]
                counts = progress.setdefault(broadcast_id, {"sent": 0, "failed": 0, "retrying": 0})
                decision = decisions.get(message.id)
                outcome = outcome_of[message.id]
                if isinstance(outcome, str) or message.status == MessageStatus.SENT.value:
                    # Meta accepted it: sent, even if an early failed status was replayed onto it just now
                    # (the followers move it on from there, 131049 back to pending included).
                    sent.append(message.id)
                    counts["sent"] += 1
                elif message.status == MessageStatus.QUEUED.value:
                    counts["retrying"] += 1
                    if decision in ("access", "quality", "template"):
                        pauses.setdefault(broadcast_id, (decision, self._pause_reason(decision, outcome)))
                    elif decision == "throughput":
                        self._slow_down(broadcast_id)
                    elif decision in ("pair", "held back"):
                        retried.append(
                            {
                                "message_id": message.id,
                                "next_attempt_at": message.next_attempt_at,
                                # USER_LIMIT_RETRIES counts these
                                "attempts": table.c.attempts + int(decision == "held back"),
                            }
                        )
                elif decision == "unknown":
                    message.error_explanation = MAYBE_SENT
                    unknown.append(message.id)
                else:
                    counts["failed"] += 1
                    failed.append(
                        {
                            "message_id": message.id,
                            "reason": self._failure_reason(message)[:2000],
                            "error_code": message.error_code,
                        }
                    )
            if sent:
                session.execute(
                    update(BroadcastRecipient)
                    .where(BroadcastRecipient.message_id.in_(sent), BroadcastRecipient.state.in_(lower_states("sent")))
                    .values(state="sent", sent_at=now, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            if failed:
                update_rows(
                    session, table, "message_id", failed, below(table.c.state, "failed"), state="failed", updated_at=now
                )
            if unknown:
                session.execute(
                    update(BroadcastRecipient)
                    .where(
                        BroadcastRecipient.message_id.in_(unknown),
                        BroadcastRecipient.state.in_(lower_states("unknown")),
                    )
                    .values(state="unknown", reason=MAYBE_SENT, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            if retried:
                update_rows(session, table, "message_id", retried, updated_at=now)
            for broadcast_id, counts in progress.items():
                record(session, BroadcastProgressed(broadcast_id, **counts))
            session.commit()
        for answer in answers:
            with answer.run.lock:  # the dispatcher adds to in_flight under this lock
                answer.run.in_flight -= 1
            answer.run.waiting = False
        for broadcast_id, (kind, reason) in pauses.items():
            with self.database.session() as session:
                self._pause(session, broadcast_id, kind, reason)

    @staticmethod
    def _pause_reason(kind: str, outcome: str | Exception) -> str:
        words = outcome.human if isinstance(outcome, GraphError) else str(outcome)
        if kind == "access":
            return f"Meta refused SigDesk's access token, so the broadcast is paused. {words}"
        if kind == "quality":
            return f"Meta signalled a quality problem, so the broadcast is paused. {words}"
        return f"Meta no longer has this template, so the broadcast is paused. {words}"

    @staticmethod
    def _failure_reason(message: Message) -> str:
        return failure_reason_of(message.error_code, message.error_explanation)

    def _slow_down(self, broadcast_id: int) -> None:
        """Meta said the number's throughput was hit: halve this campaign's pace and hold briefly."""
        run = self.runs.get(broadcast_id)
        if run is None:
            return
        mono = time.monotonic()
        if mono - run.slowed_at < SLOW_DOWN_HOLD:
            return  # one batch of refusals is one signal
        run.effective = max(1.0, run.effective / 2)
        run.bucket.set_rate(run.effective)
        run.starts.set_rate(run.effective)
        run.slowed_at = mono
        run.hold_until = mono + SLOW_DOWN_HOLD
        log.info("broadcast %s slowed to %.1f messages/s after Meta's throughput error", broadcast_id, run.effective)


def failure_reason_of(code: int | None, explanation: str | None) -> str:
    if code == OPTED_OUT:
        return audience.OPTED_OUT
    if code == CANNOT_RECEIVE:
        return audience.UNREACHABLE
    return explanation or "Not delivered"
