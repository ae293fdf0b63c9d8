"""SigDesk's side of the relay: pairing, and the loop that pulls, verifies, stores and acknowledges.

Delivery is at least once: an event is acknowledged only after its local commit, so a crash (of
SigDesk, the relay or the network) at any point means it is sent again, and the receipts in
sigdesk.relay_client.receive make the second copy a no-op. Every request has a deadline, so a connection
that died in a sleep or a network change is noticed, and reconnects back off exponentially with
jitter so that many desktops do not return in step. Proxies come from the usual environment
variables (HTTPS_PROXY, NO_PROXY).
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import httpx
from sqlalchemy.exc import SQLAlchemyError

from sigdesk import __version__
from sigdesk.crypto import Cipher
from sigdesk.db import Database, utcnow
from sigdesk.errors import UserError
from sigdesk.addresses import check_outbound_url, guarded_mounts, refusal
from sigdesk.inbound.services import Applied, Pending, apply_batch, write_lock
from sigdesk.relay_client import receive
from sigdesk.settings import services as settings
from sigdesk.whatsapp.webhook import MalformedDelivery, parse

log = logging.getLogger(__name__)

REQUEST_SECONDS = 15.0
WAIT_SECONDS = 25.0
BATCH = 500
IDLE_SECONDS = 5.0
REFUSED_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 60.0
OFFLINE_AFTER_FAILURES = 3
STATUS_EVERY_SECONDS = 15.0


class RelayProblem(Exception):
    """The relay could not be used; the message is fit for the admin page."""


class RelayRefused(RelayProblem):
    """401: the token (or pairing code) is not accepted; pairing again is the fix."""


class RelayUnavailable(RelayProblem):
    """Network trouble or a 5xx: try again later."""


@dataclass(frozen=True)
class Pairing:
    token: str
    install: str
    name: str


@dataclass(frozen=True)
class Batch:
    events: list[receive.Relayed]
    more: bool
    acked: int


def _when(text: Any) -> datetime | None:
    """The relay's ISO time, as an aware UTC datetime (None if absent or unreadable: it is only a fact to show)."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


class RelayClient:
    """The relay's HTTP API; one per relay address and token."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        request_seconds: float = REQUEST_SECONDS,
    ) -> None:
        self.request_seconds = request_seconds
        headers = {"User-Agent": f"SigDesk/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=request_seconds,
            trust_env=True,
            transport=transport,
            mounts=None if transport is not None else guarded_mounts(),  # checked again as the token is sent
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "RelayClient":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _call(self, method: str, path: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(method, path, timeout=timeout or self.request_seconds, **kwargs)
        except httpx.HTTPError as exc:
            refused = refusal(exc)
            if refused:
                raise RelayRefused(f"Relay address: {refused} Pair again with the relay's own address.") from exc
            raise RelayUnavailable(f"Cannot reach the relay: {type(exc).__name__}: {exc}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        message = payload.get("error") if isinstance(payload, dict) else None
        if response.status_code == 401:
            raise RelayRefused(message or "The relay refused the token; pair again")
        if response.status_code >= 500 or response.status_code == 429:
            raise RelayUnavailable(message or f"The relay answered {response.status_code}")
        if response.status_code != 200 or not isinstance(payload, dict):
            raise RelayProblem(
                message or f"The relay answered {response.status_code}; is this a SigDesk relay address?"
            )
        return payload

    def pair(self, code: str) -> Pairing:
        payload = self._call("POST", "/v1/pair", json={"code": code})
        token, install, name = payload.get("token"), payload.get("install"), payload.get("name")
        if not all(isinstance(value, str) and value for value in (token, install, name)):
            raise RelayProblem("The relay's pairing answer is incomplete")
        return Pairing(token, install, name)

    def pull(self, limit: int = BATCH, wait: float = WAIT_SECONDS, after: int | None = None) -> Batch:
        params: dict[str, Any] = {"limit": limit, "wait": wait}
        if after is not None:
            params["after"] = after
        payload = self._call("GET", "/v1/events", timeout=wait + self.request_seconds, params=params)
        try:
            events = [
                receive.Relayed(
                    int(item["seq"]),
                    item.get("signature"),
                    base64.b64decode(item["body"], validate=True),
                    _when(item.get("received_at")),
                )
                for item in payload["events"]
            ]
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise RelayProblem(f"The relay sent an event SigDesk cannot read: {exc}") from exc
        return Batch(events, bool(payload.get("more")), int(payload.get("acked") or 0))

    def ack(self, seq: int) -> int:
        return int(self._call("POST", "/v1/ack", json={"seq": seq}).get("acked") or 0)

    def replay(self, since: datetime) -> dict[str, Any]:
        return self._call("POST", "/v1/replay", json={"since": since.astimezone(timezone.utc).isoformat()})

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")


def pair(url: str, code: str, transport: httpx.BaseTransport | None = None) -> Pairing:
    """Redeem a pairing code. Every failure is a RelayProblem in plain words, fit to show as it is; the
    address is checked first (no link-local or metadata host gets the code)."""
    try:
        address = check_outbound_url(url, "Relay address")
    except UserError as exc:
        raise RelayProblem(str(exc)) from exc
    try:
        with RelayClient(address, transport=transport) as client:
            return client.pair(code)
    except RelayUnavailable as exc:
        if not isinstance(exc.__cause__, httpx.HTTPError):
            raise
        log.info("pairing: the relay at %s could not be reached: %s", address, type(exc.__cause__).__name__)
        raise RelayUnavailable(
            f"SigDesk could not reach a relay at {address}. Check the address, that the relay is running "
            "and that this computer is online, then try again."
        ) from exc


@dataclass(frozen=True)
class Config:
    mode: str
    url: str | None
    token: str | None
    install: str | None
    app_secret: str | None


def read_config(session, cipher: Cipher) -> Config:
    def get(key: str):
        return settings.get(session, cipher, key)

    return Config(
        get("inbound.mode"), get("relay.url"), get("relay.token"), get("relay.install"), get("whatsapp.app_secret")
    )


def save_pairing(session, cipher: Cipher, url: str, pairing: Pairing) -> None:
    """Switch inbound to the relay; flushes, the caller commits."""
    settings.set_text(session, cipher, "relay.url", url)
    settings.set_value(session, cipher, "relay.token", pairing.token)
    settings.set_value(session, cipher, "relay.install", pairing.install)
    settings.set_value(session, cipher, "inbound.mode", "relay")


@dataclass(frozen=True)
class Status:
    """What the header and the inbound page show; `state` is one of STATES."""

    state: str = "starting"
    message: str = ""
    last_contact_at: datetime | None = None
    last_event_at: datetime | None = None
    backlog: int | None = None
    oldest_unacked_age: float | None = None
    ingested: int = 0
    quarantined: int = 0


STATES = ("starting", "off", "unpaired", "waiting", "connected", "reconnecting", "offline", "refused")


class Puller:
    """The background loop (run by the worker's add_loop) that drains the relay into the database."""

    def __init__(
        self,
        database: Database,
        cipher: Cipher,
        batch: int = BATCH,
        wait: float = WAIT_SECONDS,
        transport: httpx.BaseTransport | None = None,
        request_seconds: float = REQUEST_SECONDS,
    ) -> None:
        self.database = database
        self.request_seconds = request_seconds
        self.cipher = cipher
        self.batch = batch
        self.wait = wait
        self.transport = transport
        self._status = Status()
        self._status_lock = threading.Lock()
        self._wake = threading.Event()
        self._client: RelayClient | None = None
        self._client_key: tuple[str, str] | None = None
        self._failures = 0
        self._status_fetched = 0.0

    # --- what the UI reads ---------------------------------------------------------------------

    @property
    def status(self) -> Status:
        with self._status_lock:
            return self._status

    def _set(self, **changes: Any) -> None:
        with self._status_lock:
            self._status = replace(self._status, **changes)

    def wake(self) -> None:
        """Settings changed (paired, unpaired, new app secret): look again now instead of after the pause."""
        self._wake.set()

    interrupt = wake

    # --- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self._pause(stop, self.step(stop))
        finally:
            self._close()

    def _pause(self, stop: threading.Event, seconds: float) -> None:
        if seconds > 0 and not stop.is_set():
            self._wake.wait(seconds)
        self._wake.clear()

    def step(self, stop: threading.Event | None = None) -> float:
        """One pull-store-acknowledge round; returns how long to pause before the next."""
        stop = stop or threading.Event()
        try:
            with self.database.session(write=False) as session:
                config = read_config(session, self.cipher)
        except SQLAlchemyError as exc:
            log.error("relay: cannot read the settings: %s", type(exc).__name__)
            return self._failed("SigDesk's database is not answering")
        if config.mode != "relay":
            self._close()
            self._set(state="off", message="Inbound webhooks come directly (not through the relay)")
            return IDLE_SECONDS
        if not (config.url and config.token and config.install):
            self._close()
            self._set(state="unpaired", message="Pair SigDesk with the relay in Settings → Inbound")
            return IDLE_SECONDS
        if not config.app_secret:
            self._set(state="waiting", message="Enter the Meta app secret (Settings → Connection) to check events")
            return IDLE_SECONDS
        try:
            check_outbound_url(config.url, "Relay address", resolve=False)
        except UserError as exc:
            self._close()
            self._set(state="refused", message=f"{exc} Pair again with the relay's own address (Settings → Inbound).")
            return REFUSED_SECONDS
        client = self._client_for(config)
        try:
            batch = client.pull(limit=self.batch, wait=self.wait)
            if stop.is_set():
                return 0  # stopping: leave these for the next start, unacknowledged
            if batch.events:
                stored = self._store(config, batch.events)
                client.ack(batch.events[-1].seq)
                self._note_batch(stored)
            self._connected(client, batch)
            return 0
        except RelayRefused as exc:
            log.warning("relay refused SigDesk's token: %s", exc)
            self._failures = 0
            self._set(state="refused", message=f"{exc} (Settings → Inbound)")
            return REFUSED_SECONDS
        except RelayProblem as exc:
            # once when trouble starts and once when it turns into "offline", not on every retry
            log.log(
                logging.WARNING if self._failures in (0, OFFLINE_AFTER_FAILURES) else logging.DEBUG, "relay: %s", exc
            )
            return self._failed(str(exc))
        except SQLAlchemyError as exc:
            log.error("relay: storing events failed (%s); they stay on the relay", type(exc).__name__)
            return self._failed("SigDesk could not store relayed events; they stay on the relay")

    def _store(self, config: Config, events: list[receive.Relayed]) -> receive.Stored:
        """Commit every event (and its receipt) before any is acknowledged; then ingest them."""
        session = self.database.writer()
        try:
            with write_lock(session):
                stored = receive.store_relayed(session, config.install, events, config.app_secret)
                session.commit()
            apply(session, stored.pending)
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        if stored.quarantined:
            log.warning("relay: %d events did not match the app secret and were quarantined", stored.quarantined)
        return stored

    def _note_batch(self, stored: receive.Stored) -> None:
        current = self.status
        self._set(
            last_event_at=utcnow(),
            ingested=current.ingested + len(stored.pending),
            quarantined=current.quarantined + stored.quarantined,
        )

    def _connected(self, client: RelayClient, batch: Batch) -> None:
        if self._failures:
            log.info("relay: connected again")
        self._failures = 0
        changes: dict[str, Any] = {"state": "connected", "message": "", "last_contact_at": utcnow()}
        if not batch.more and len(batch.events) < self.batch:
            changes.update(backlog=0, oldest_unacked_age=None)
        elif time.monotonic() - self._status_fetched > STATUS_EVERY_SECONDS:
            self._status_fetched = time.monotonic()
            try:
                remote = client.status()
                changes.update(
                    backlog=remote.get("backlog"), oldest_unacked_age=remote.get("oldest_unacked_age_seconds")
                )
            except RelayProblem:
                pass  # the next pull will tell whether the relay is really gone
        self._set(**changes)

    def _failed(self, message: str) -> float:
        self._failures += 1
        state = "offline" if self._failures > OFFLINE_AFTER_FAILURES else "reconnecting"
        self._set(state=state, message=message)
        return backoff(self._failures)

    def _client_for(self, config: Config) -> RelayClient:
        key = (config.url, config.token)
        if self._client is None or self._client_key != key:
            self._close()
            self._client = RelayClient(config.url, config.token, self.transport, self.request_seconds)
            self._client_key = key
        return self._client

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._client_key = None


def apply(session, pending: list[Pending]) -> Applied:
    """Parse outside the write lock, then apply in chunks (see apply_batch)."""
    return apply_batch(session, [replace(item, parsed=_parsed(item.raw)) for item in pending])


def _parsed(raw: bytes):
    try:
        return parse(raw)
    except (MalformedDelivery, ValueError):
        return None  # apply_delivery parses again and quarantines it


def backoff(failures: int) -> float:
    """Exponential, capped, with jitter: half the step fixed, half random."""
    step = min(MAX_BACKOFF_SECONDS, 2.0 ** min(failures, 10) / 2)
    return step / 2 + random.uniform(0, step / 2)
