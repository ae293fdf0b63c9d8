"""Meta's POST /webhooks/whatsapp as plain WSGI in front of Flask: the one hot path in the product.

Meta may deliver hundreds of webhooks a second at a burst, and each passes through this code and
nothing else. Flask's per-request machinery (session cookie, login, CSRF, allow-list, security
headers) serves browsers; a webhook needs none of it, because the signature over the raw bytes
authenticates it. So, like the relay service, the endpoint is a small WSGI app that answers before
Flask is entered; every other method and path goes on to Flask (the GET handshake is a Flask view).

Answers, and why:

* No valid X-Hub-Signature-256 -> 403, nothing stored, nothing written: the refusal is counted in
  memory, the worker adds the count to the admins' counter every few seconds, and the log gets one
  summary line a minute (a flood of forgeries must cost neither a write nor a log line each).
* Larger than Meta's 3 MB plus margin -> 413, before the body is read.
* Correctly signed -> the raw bytes are committed, then applied (usually in the same transaction,
  see services.store_and_apply), and the answer is 200 whatever applying did: the raw copy is safe,
  and any other answer makes Meta resend for seven days. A signed body that is not a JSON object is
  stored as *quarantined*; one whose processing fails is stored as *failed*, to be reprocessed.
* The database refuses the write -> 503 with Retry-After: nothing was kept, and Meta sends again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from sigdesk.batching import BatchFailed, GroupCommit
from sigdesk.crypto import Cipher
from sigdesk.db import Database, utcnow
from sigdesk.inbound import services
from sigdesk.whatsapp.webhook import parse, verify_signature

log = logging.getLogger(__name__)

PATH = "/webhooks/whatsapp"
MAX_WEBHOOK_BYTES = 4 * 1024 * 1024
SECRET_TTL_SECONDS = 5.0
FLUSH_SECONDS = 5.0
LOG_SECONDS = 60.0
SIGNATURE_ENV = "HTTP_X_HUB_SIGNATURE_256"
TOO_LARGE = f"Webhook bodies are limited to {MAX_WEBHOOK_BYTES // (1024 * 1024)} MB."
BAD_SIGNATURE = "The webhook signature is missing or does not match the app secret."
NOT_STORED = "SigDesk could not store the delivery; Meta will send it again."
UNEXPECTED = "Something went wrong on the server. The details are in the log."

WSGIApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]
_REASONS = {
    200: "200 OK",
    403: "403 Forbidden",
    413: "413 Request Entity Too Large",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


class AppSecret:
    """Needed on every delivery; reading and decrypting it each time is waste. A change made in
    SigDesk counts at once (`invalidate`), one made by another process within a few seconds."""

    def __init__(self, database: Database, cipher: Cipher) -> None:
        self._database = database
        self._cipher = cipher
        self._loaded_at = 0.0
        self._value: str | None = None

    def get(self) -> str | None:
        if time.monotonic() - self._loaded_at > SECRET_TTL_SECONDS:
            with self._database.session(write=False) as session:
                self._value = services.app_secret(session, self._cipher)
            self._loaded_at = time.monotonic()
        return self._value

    def invalidate(self) -> None:
        self._loaded_at = 0.0


class RefusalTally:
    """Refused deliveries, counted in memory: `add` is a lock and two additions, `flush` (a worker
    task) writes what was counted in one statement, and the warning is one line per interval
    saying how many were refused and why, however many arrive."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS, log_seconds: float = LOG_SECONDS) -> None:
        self.flush_seconds = flush_seconds
        self.log_seconds = log_seconds
        self._lock = threading.Lock()
        self._unwritten = 0
        self._last_at = None
        self._unlogged: dict[str, int] = {}
        self._logged_at = float("-inf")
        self._flushed_at = float("-inf")

    def add(self, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._unwritten += 1
            self._last_at = utcnow()
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            due = now - self._logged_at >= self.log_seconds
        if due:
            self.log_summary()

    def log_summary(self, force: bool = False) -> None:
        """One warning for everything refused since the last one, if the interval has passed."""
        now = time.monotonic()
        with self._lock:
            if not self._unlogged or (not force and now - self._logged_at < self.log_seconds):
                return
            unlogged, self._unlogged = self._unlogged, {}
            first = self._logged_at == float("-inf")
            self._logged_at = now
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(unlogged.items()))
        log.warning(
            "refused %d webhook%s (%s)%s",
            sum(unlogged.values()),
            "" if sum(unlogged.values()) == 1 else "s",
            reasons,
            "; further refusals are summed up here once a minute"
            if first
            else f" in the last {self.log_seconds:.0f} s",
        )

    @property
    def pending(self) -> int:
        """Counted but not yet written."""
        with self._lock:
            return self._unwritten

    def flush(self, session: Session, force: bool = False) -> int:
        """The worker's task: add what was counted to the stored counter, at most every flush_seconds.

        Returns 0 whatever it wrote, so a flood does not keep the worker from idling between passes."""
        now = time.monotonic()
        with self._lock:
            if not self._unwritten or (not force and now - self._flushed_at < self.flush_seconds):
                return 0
            count, last_at = self._unwritten, self._last_at
            self._unwritten = 0
            self._flushed_at = now
        try:
            with services.write_lock(session):
                services.count_rejected(session, by=count, at=last_at)
                session.commit()
        except BaseException:
            with self._lock:
                self._unwritten += count
            raise
        self.log_summary()
        return 0


class WebhookIntake:
    """WSGI middleware: answers Meta's POST itself, passes everything else to `app`."""

    def __init__(self, app: WSGIApp, database: Database, cipher: Cipher) -> None:
        self.app = app
        self.database = database
        self.secret = AppSecret(database, cipher)
        self.refusals = RefusalTally()
        writer = _Writer(database)
        self.commit: GroupCommit[services.Incoming, tuple[int, str]] = GroupCommit(writer.write, idle=writer.close)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        try:
            status, body, headers = self.receive(environ)
        except Exception:  # noqa: BLE001 - Meta must get an answer; the log has the details
            log.exception("unexpected error while receiving a webhook")
            status, body, headers = 500, {"error": UNEXPECTED, "status": 500}, []
        payload = json.dumps(body).encode()
        start_response(
            _REASONS[status],
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("X-Content-Type-Options", "nosniff"),
                ("Cache-Control", "no-store"),
                *headers,
            ],
        )
        return [payload]

    def receive(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        try:
            stream = get_input_stream(environ, max_content_length=MAX_WEBHOOK_BYTES)
            raw = stream.read()
        except RequestEntityTooLarge:
            return _error(413, TOO_LARGE)
        signature = environ.get(SIGNATURE_ENV)
        secret = self.secret.get()
        if not verify_signature(secret, raw, signature):
            self.refusals.add("signature missing or wrong" if secret else "no app secret is set")
            return _error(403, BAD_SIGNATURE)
        try:
            parsed = parse(raw)  # here, not in the batch: the batch holds the write lock
        except Exception:  # noqa: BLE001 - the batch parses it again and keeps it quarantined or failed, with why
            parsed = None
        try:
            delivery_id, state = self.commit.submit(services.Incoming(raw, signature, parsed))
        except BatchFailed as exc:
            log.error("could not store a webhook delivery: %s", services.describe_error(exc.__cause__ or exc))
            return _error(503, NOT_STORED, [("Retry-After", "5")])
        return 200, {"status": state, "delivery": delivery_id}, []

    @property
    def batches(self) -> int:
        return self.commit.batches


def _error(status: int, message: str, headers: list[tuple[str, str]] | None = None):
    return status, {"error": message, "status": status}, headers or []


class _Writer:
    """Stores and applies batches on one connection for as long as batches follow each other.

    Checking a connection out of the pool and setting up a session for every batch cost about a
    fifth of applying a small batch; GroupCommit calls `close` when a run of batches ends, so
    nothing stays open while deliveries are quiet. Only the leading thread calls either method."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._session: Session | None = None

    def write(self, batch: list[services.Incoming]) -> list[tuple[int, str]]:
        if self._session is None:
            self._session = Session(bind=self._database.writer_engine.connect(), expire_on_commit=False)
        try:
            ids, applied = services.store_and_apply(self._session, batch)
        except BaseException:
            self.close()
            raise
        return list(zip(ids, applied.states))

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            connection = session.bind
            session.close()
            connection.close()
