"""The relay service: a plain WSGI app, so Meta's POST costs one insert and little else.

Routes:

* ``GET  /hook/<path>``   Meta's handshake for that install (verify token checked against its hash).
* ``POST /hook/<path>``   store the exact bytes and the signature header, commit, then 200. Never parsed.
* ``POST /v1/pair``       one-time pairing code -> bearer token.
* ``GET  /v1/events``     long-poll: ``after`` cursor (default: the acknowledged one), ``limit``, ``wait``.
* ``POST /v1/ack``        ``{"seq": N}``: everything up to N is safely stored on the desktop.
* ``POST /v1/replay``     ``{"since": ISO date}``: deliver acknowledged events again from that date.
* ``GET  /v1/status``     last Meta delivery, last desktop poll, backlog, oldest unacknowledged event.
* ``GET  /healthz``       liveness (and that the database answers).

The relay never holds the app secret, so it cannot make events up; it can only keep or lose them,
and it answers 200 only once an event is committed.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sigdesk import __version__
from sigdesk.relay import installs
from sigdesk.relay.store import InstallGone, QuotaExceeded, Reader, RelayStore, StoreUnavailable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024  # Meta sends up to 3 MB
MAX_WAIT_SECONDS = 25.0
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_BATCH_BYTES = 8 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024
RECHECK_SECONDS = 2.0  # another relay process on the same database cannot wake our long-polls
SWITCH_INTERVAL_SECONDS = 0.00002
SIGNATURE_ENV = "HTTP_X_HUB_SIGNATURE_256"
_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"[0-9]{1,18}")

Response = tuple[str, list[tuple[str, str]], bytes]
STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Payload Too Large",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
_OK = ("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "2")], b"ok")


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(status: int, payload: dict[str, Any], extra: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
    return STATUS_LINES[status], headers + (extra or []), body


def _error(status: int, message: str, extra: list[tuple[str, str]] | None = None) -> Response:
    return _json(status, {"error": message, "status": status}, extra)


class RelayApp:
    """The WSGI callable. `threads` is waitress's pool: long-polls may hold all but a few of them."""

    def __init__(self, store: RelayStore, max_body_bytes: int = MAX_BODY_BYTES, threads: int = 16) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes
        self._waiting = threading.BoundedSemaphore(max(1, threads - 4))
        self._routes: dict[tuple[str, str], Callable[[dict[str, Any]], Response]] = {
            ("GET", "/healthz"): self.healthz,
            ("POST", "/v1/pair"): self.pair,
            ("GET", "/v1/events"): self.events,
            ("POST", "/v1/ack"): self.ack,
            ("POST", "/v1/replay"): self.replay,
            ("GET", "/v1/status"): self.status,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        try:
            status, headers, body = self._route(environ)
        except BadRequest as exc:
            status, headers, body = _error(exc.status, str(exc))
        except Exception:  # noqa: BLE001 - the relay must answer something, and never leak details
            log.exception("relay request %s %s failed", environ.get("REQUEST_METHOD"), _route_name(environ))
            status, headers, body = _error(500, "The relay failed; the details are in its log.")
        start_response(status, headers)
        return [body]

    def _route(self, environ: dict[str, Any]) -> Response:
        path: str = environ.get("PATH_INFO") or "/"
        method: str = environ["REQUEST_METHOD"]
        self.store.maybe_purge()
        if path.startswith("/hook/"):
            if method == "POST":
                return self.receive(environ, path[6:])
            if method == "GET":
                return self.handshake(environ, path[6:])
            return _error(405, "Use GET (handshake) or POST (deliveries)", [("Allow", "GET, POST")])
        handler = self._routes.get((method, path))
        if handler is None:
            if any(route_path == path for _, route_path in self._routes):
                return _error(405, "This address does not accept that method")
            return _error(404, "There is nothing at this address")
        return handler(environ)

    # --- Meta ----------------------------------------------------------------------------------

    def handshake(self, environ: dict[str, Any], hook_path: str) -> Response:
        hook = self.store.hook(hook_path)
        if hook is None:
            return _error(404, "Unknown webhook address")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        mode = query.get("hub.mode", [None])[0]
        token = query.get("hub.verify_token", [None])[0]
        challenge = query.get("hub.challenge", [None])[0]
        if (
            mode != "subscribe"
            or token is None
            or challenge is None
            or not self.store.verify_token_matches(hook, token)
        ):
            log.warning("refused a webhook handshake for install %s: wrong mode or verify token", hook.install_id)
            return _error(403, "The verify token does not match this install's")
        body = challenge.encode("utf-8")
        return "200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))], body

    def receive(self, environ: dict[str, Any], hook_path: str) -> Response:
        length_text = environ.get("CONTENT_LENGTH") or ""
        if length_text:
            if not length_text.isdigit():
                return _error(400, "Content-Length is not a number")
            length = int(length_text)
            if length > self.max_body_bytes:
                return _error(413, f"Bodies are limited to {self.max_body_bytes} bytes")
            body = environ["wsgi.input"].read(length) if length else b""
        else:
            body = environ["wsgi.input"].read(self.max_body_bytes + 1)
            if len(body) > self.max_body_bytes:
                return _error(413, f"Bodies are limited to {self.max_body_bytes} bytes")
        signature = environ.get(SIGNATURE_ENV)
        if signature is None or _SIGNATURE.fullmatch(signature.strip()) is None:
            return _error(403, "X-Hub-Signature-256 is missing or malformed")
        hook = self.store.hook(hook_path)
        if hook is None:
            return _error(404, "Unknown webhook address")
        try:
            self.store.append(hook.install_id, body, signature.strip())
        except InstallGone:
            return _error(404, "Unknown webhook address")
        except QuotaExceeded:
            return _error(503, "This install's relay storage is full; retry later", [("Retry-After", "300")])
        except StoreUnavailable:
            return _error(503, "The relay cannot store events right now; retry later", [("Retry-After", "30")])
        return _OK

    # --- the desktop ---------------------------------------------------------------------------

    def _reader(self, environ: dict[str, Any]) -> Reader:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        reader = self.store.reader(token.strip()) if scheme.lower() == "bearer" else None
        if reader is None:
            raise Unauthorized()
        return reader

    def pair(self, environ: dict[str, Any]) -> Response:
        payload = _read_json(environ)
        code = payload.get("code")
        if not isinstance(code, str):
            raise BadRequest(400, 'Send {"code": "<pairing code>"}')
        try:
            with self.store.write_lock(), self.store.database.session() as session:
                install, token = installs.pair(session, code)
                result = {"token": token, "install": install.uid, "name": install.name}
        except installs.PairingRefused as exc:
            return _error(401, str(exc))
        log.info("install %s paired", result["name"])
        return _json(200, result)

    def events(self, environ: dict[str, Any]) -> Response:
        reader = self._reader(environ)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        after = _int_arg(query, "after", None, 0, None)
        limit = _int_arg(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        wait = _float_arg(query, "wait", 0.0, 0.0, MAX_WAIT_SECONDS)
        self.store.stamp_poll(reader.id)
        deadline = time.monotonic() + wait
        holding = False
        try:
            while True:
                seen = self.store.notifier.generation(reader.id)
                events, more, acked = self.store.pull(reader.id, after, limit, MAX_BATCH_BYTES)
                remaining = deadline - time.monotonic()
                if events or remaining <= 0 or self.store.notifier.closed:
                    break
                if not holding:
                    holding = self._waiting.acquire(blocking=False)
                    if not holding:
                        break  # every slot is taken: answer now rather than starve Meta's POSTs of threads
                self.store.notifier.wait(reader.id, seen, min(remaining, RECHECK_SECONDS))
        finally:
            if holding:
                self._waiting.release()
        return _json(
            200,
            {
                "events": [
                    {
                        "seq": event.seq,
                        "received_at": _iso(event.received_at),
                        "signature": event.signature,
                        "body": base64.b64encode(event.body).decode("ascii"),
                    }
                    for event in events
                ],
                "more": more,
                "acked": acked,
            },
        )

    def ack(self, environ: dict[str, Any]) -> Response:
        reader = self._reader(environ)
        seq = _read_json(environ).get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise BadRequest(400, 'Send {"seq": <the last sequence number stored>}')
        return _json(200, {"acked": self.store.ack(reader.id, seq)})

    def replay(self, environ: dict[str, Any]) -> Response:
        reader = self._reader(environ)
        since_text = _read_json(environ).get("since")
        since = _parse_when(since_text) if isinstance(since_text, str) else None
        if since is None:
            raise BadRequest(400, 'Send {"since": "<ISO 8601 date or time>"}')
        result = self.store.replay(reader.id, since)
        log.info("install %s asked to replay events since %s", reader.name, _iso(since))
        return _json(200, result)

    def status(self, environ: dict[str, Any]) -> Response:
        reader = self._reader(environ)
        return _json(200, self.store.status(reader.id))

    def healthz(self, _environ: dict[str, Any]) -> Response:
        try:
            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return _error(503, "The relay's database does not answer")
        return _json(200, {"status": "ok", "version": __version__})


class Unauthorized(BadRequest):
    def __init__(self) -> None:
        super().__init__(401, "A valid bearer token is required (pair again if the relay rotated it)")


def _route_name(environ: dict[str, Any]) -> str:
    path = environ.get("PATH_INFO") or "/"
    return "/hook/…" if path.startswith("/hook/") else path  # the webhook path is a capability; keep it out of logs


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    length_text = environ.get("CONTENT_LENGTH") or "0"
    if not length_text.isdigit():
        raise BadRequest(400, "Content-Length is not a number")
    length = int(length_text)
    if length > MAX_JSON_BYTES:
        raise BadRequest(413, "The request body is too large")
    try:
        payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "The body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "The body must be a JSON object")
    return payload


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(400, f"'{name}' is given more than once")
    return values[0]


def _int_arg(query: dict[str, list[str]], name: str, default: int | None, low: int, high: int | None) -> int | None:
    value = _one(query, name)
    if value is None:
        return default
    if not _DIGITS.fullmatch(value) or int(value) < low or (high is not None and int(value) > high):
        bounds = f"{low}..{high}" if high is not None else f"{low} or more"
        raise BadRequest(400, f"'{name}' must be a whole number ({bounds})")
    return int(value)


def _float_arg(query: dict[str, list[str]], name: str, default: float, low: float, high: float) -> float:
    value = _one(query, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not low <= number <= high:  # also refuses NaN
        raise BadRequest(400, f"'{name}' must be a number of seconds ({low:g}..{high:g})")
    return number


def _parse_when(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def create_relay_app(
    database_url: str, threads: int = 16, max_body_bytes: int = MAX_BODY_BYTES, **store_options: Any
) -> RelayApp:
    from sigdesk.relay.schema import open_relay_database

    return RelayApp(RelayStore(open_relay_database(database_url), **store_options), max_body_bytes, threads)


def serve(app: RelayApp, host: str, port: int, threads: int = 16, echo: Callable[[str], None] = print) -> None:
    """Run under waitress until Ctrl+C or SIGTERM; TLS is the reverse proxy's job (Caddy, nginx)."""
    import signal

    from waitress.server import create_server

    # The thread holding the write lock must retake the GIL after each SQLite call; with 16 busy
    # threads, waiting out Python's default 5 ms switch interval each time made the lock a convoy
    # (measured: 400 POST/s at 1 ms, 1,600 at 20 µs, no better below).
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="SigDesk relay",
        max_request_body_size=app.max_body_bytes + 65536,
        clear_untrusted_proxy_headers=True,
        channel_timeout=MAX_WAIT_SECONDS + 35,
    )
    echo(f"SigDesk relay {__version__} listening on http://{host}:{server.effective_port}/")

    def stop(_signum, _frame) -> None:
        echo("Stopping the relay.")
        app.store.notifier.close()  # end long-polls now: waitress waits for busy threads
        raise KeyboardInterrupt  # waitress stops on it (systemd and docker send SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.run()
    finally:
        server.close()
        app.store.close()
