"""Broadcast benchmark (issue 16): pace, steadiness, inbox latency while sending, and CPU per message.

Run from the project root:

    .venv/bin/python tests/perf/bench_broadcast.py --count 10000 --rate 80       # SQLite in a temp dir
    .venv/bin/python tests/perf/bench_broadcast.py --count 10000 --rate 500
    .venv/bin/python tests/perf/bench_broadcast.py --count 1000 --rate 80 \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench                  # MariaDB (re-created)

Three processes, so no GIL is shared with what is measured: the fake Graph API (tests/fakes/graph.py, which
records when each send arrived), a real `sigdesk serve` (its worker runs the broadcast engine) and this
script (the client). The database gets --count contacts, all opted in to marketing with German mobile
numbers (no +1, which marketing templates skip), each with a conversation and an older customer message
so the inbox has a list to show; plus an approved MARKETING template (also known to the fake, so an
unknown name would be refused as Meta does), a segment of the opted-in contacts and a WhatsApp connection
pointing at the fake, with the messaging limit unlimited and the number's throughput at 1,000/s.

Before the broadcast the inbox list (/inbox/list as a signed-in agent, and GET /api/v1/conversations with
the agent's token) is timed as the baseline; then the broadcast is created and started through the API
(POST /api/v1/broadcasts, POST .../start) and the same requests are timed while it sends, until GET
/api/v1/broadcasts/{id} says completed. Printed, each with its target from the issue:

- the time from the start call to completed and to the last send, against count / rate (± 5 %, judged at 80/s);
- the largest number of sends the fake received in any one-second window (<= rate * 1.05);
- the achieved rate, sends / (last send - start), against the target (>= 95 %);
- inbox list p95 while sending (< 100 ms) and as a ratio to the baseline p95 measured just before;
- CPU seconds of the server process per sent message (/proc/PID/stat), raw and less the inbox requests
  (each costed at the baseline's CPU per request);
- duplicates (the same `to` twice at the fake; must be 0) and the final recipient counts.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery"
OWNER = "owner@bench.example"
AGENT = "agent@bench.example"
TEMPLATE = "new_batch"
LANGUAGE = "en"
BODY = "Hello {{1}}, the new batch is in! Reply STOP to opt out."
COMPONENTS = [{"type": "BODY", "text": BODY, "example": {"body_text": [["Maria"]]}}]
FIRST_NUMBER = 4915110000000  # +49 151 1000 0000: valid German mobile numbers, one per contact
SEGMENT = "Opted in (bench)"
BATCH = 5000
FIRST = "Maria Anna Peter Thomas Julia Michael Laura Stefan Sophie Lukas Emma Jonas Mia Paul Lea Felix".split()
LAST = "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein".split()


# --- the fake Graph API in its own process -----------------------------------------------------


def serve_fake_graph(delay: float, server_kind: str = "waitress") -> None:
    """The fake on loopback until stdin closes; /bench/sent answers [[to, received_at], ...] in order."""
    import logging

    from tests.fakes.graph import FakeGraph

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # Meta answers without pausing; the fake keeps every request, and its collector's full passes over
    # them paused it for up to 80 ms, bunching the receipt times it records
    gc.disable()
    fake = FakeGraph(delay=delay)
    fake.templates = [
        {
            "name": TEMPLATE,
            "language": LANGUAGE,
            "status": "APPROVED",
            "category": "MARKETING",
            "id": "990000000000001",
            "components": COMPONENTS,
        }
    ]
    inner = fake.app.wsgi_app
    ports: set[str] = set()

    def bench_routes(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/bench/sent":
            with fake._lock:
                rows = [[str(body.get("to")), at] for body, at in zip(fake.sent, fake.sent_at)]
            payload = json.dumps({"sent": rows, "requests": len(fake.requests), "connections": len(ports)}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
        if path == "/bench/reset":
            with fake._lock:
                fake.sent.clear()
                fake.sent_at.clear()
                fake.requests.clear()
                fake.recipients.clear()
                ports.clear()
            start_response("204 No Content", [])
            return [b""]
        if path.endswith("/messages"):
            ports.add(str(environ.get("REMOTE_PORT")))  # one client port per connection SigDesk opened
        return inner(environ, start_response)

    fake.app.wsgi_app = bench_routes
    if server_kind == "werkzeug":  # as the tests run it: one connection per request ("Connection: close")
        fake.start()
        print(fake.url, flush=True)
        sys.stdin.read()
        fake.stop()
        return
    # waitress keeps connections open, as Meta's servers do, so a send costs no TCP handshake on either side
    from waitress.server import create_server

    # without a delay its handlers take well under a millisecond and a few threads serve them; with one,
    # every call out holds a thread, as many as SigDesk's sending process may have waiting on Meta
    threads = 8 if not delay else 256
    server = create_server(fake.app, host="127.0.0.1", port=0, threads=threads, connection_limit=1000, ident="fake")
    fake.url = f"http://127.0.0.1:{server.effective_port}"
    threading.Thread(target=server.run, name="fake-graph", daemon=True).start()
    print(fake.url, flush=True)
    sys.stdin.read()
    server.close()


class FakeGraphProcess:
    def __init__(self, log_file: Path, delay: float = 0.0, server_kind: str = "waitress") -> None:
        args = [sys.executable, __file__, "--fake-graph", "--graph-delay", str(delay), "--graph-server", server_kind]
        self.log = log_file.open("ab")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT
        )
        self.connections = 0
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.proc.kill()
            raise SystemExit(f"the fake Graph API did not start (see {log_file})")

    def sent(self) -> list[tuple[str, float]]:
        """Every accepted send as (to, time.time() when it arrived), in arrival order."""
        answer = httpx.get(f"{self.url}/bench/sent", timeout=60, trust_env=False)
        answer.raise_for_status()
        self.connections = answer.json()["connections"]
        return [(to, at) for to, at in answer.json()["sent"]]

    def reset(self) -> None:
        httpx.post(f"{self.url}/bench/reset", timeout=30, trust_env=False).raise_for_status()

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- the database --------------------------------------------------------------------------------


@dataclass
class Seeded:
    db_url: str
    owner_token: str
    agent_token: str
    segment_id: int
    contact_ids: list[int]
    seconds: float


def prepare(data_dir: Path, db_url: str | None, count: int, graph_url: str, seed_value: int = 16) -> Seeded:
    """A new database (migrated by create_app) with the users, connection, template, segment and contacts.

    A MariaDB database is dropped and re-created; a SQLite data dir must not hold a database yet."""
    from sqlalchemy import insert, select

    from sigdesk.actor import Actor
    from sigdesk.app import create_app
    from sigdesk.auth import services as accounts
    from sigdesk.config import Config
    from sigdesk.models import ConsentEvent, Contact, Conversation, Message
    from sigdesk.segments.commands import create_segment
    from sigdesk.settings import services as settings
    from tests import factories
    from tests.mysql import recreate_database

    begun = time.monotonic()
    if db_url and db_url.startswith("mysql"):
        recreate_database(db_url)
    elif (data_dir / "sigdesk.db").exists():
        raise SystemExit(f"{data_dir / 'sigdesk.db'} exists; give a new --data-dir")
    data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(Config.from_env(data_dir=data_dir, database_url=db_url, bcrypt_rounds=4))
    state = app.extensions["sigdesk"]
    rng = random.Random(seed_value)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with state.database.session() as session:
        owner = accounts.create_user(session, OWNER, "Bench Owner", "owner", PASSWORD, rounds=4)
        agent = accounts.create_user(session, AGENT, "Bench Agent", "agent", PASSWORD, rounds=4)
        owner_token = accounts.create_api_token(session, owner, "bench")
        agent_token = accounts.create_api_token(session, agent, "bench")
        factories.whatsapp_connection(session, state.cipher, graph_url)
        for key, value in (("whatsapp.messaging_limit", "unlimited"), ("whatsapp.throughput", "1000")):
            settings.set_text(session, state.cipher, key, value)
        factories.template(session, TEMPLATE, LANGUAGE, "APPROVED", "MARKETING", components=COMPONENTS)
        contacts = [
            {
                "wa_id": str(FIRST_NUMBER + n),
                "profile_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "marketing_consent": "opted_in",
                "created_at": now - timedelta(days=90),
                "updated_at": now - timedelta(days=90),
            }
            for n in range(count)
        ]
        for offset in range(0, count, BATCH):
            session.execute(insert(Contact), contacts[offset : offset + BATCH])
        ids = list(session.scalars(select(Contact.id).order_by(Contact.id)))
        consents = [
            {"contact_id": cid, "status": "opted_in", "source": "import", "at": now - timedelta(days=60)} for cid in ids
        ]
        when = {cid: now - timedelta(minutes=rng.randint(60, 60 * 24 * 30)) for cid in ids}
        conversations = [
            {
                "contact_id": cid,
                "status": "open" if rng.random() < 0.3 else "resolved",
                "last_message_at": when[cid],
                "last_inbound_at": when[cid],
                "created_at": when[cid],
            }
            for cid in ids
        ]
        for offset in range(0, count, BATCH):
            session.execute(insert(ConsentEvent), consents[offset : offset + BATCH])
            session.execute(insert(Conversation), conversations[offset : offset + BATCH])
        threads = dict(session.execute(select(Conversation.contact_id, Conversation.id)).all())
        messages = [
            {
                "wamid": f"wamid.bench.in.{cid}",
                "conversation_id": threads[cid],
                "contact_id": cid,
                "direction": "in",
                "type": "text",
                "text": "Hi, is my order ready for pickup?",
                "timestamp": when[cid],
                "created_at": when[cid],
            }
            for cid in ids
        ]
        for offset in range(0, count, BATCH):
            session.execute(insert(Message), messages[offset : offset + BATCH])
        session.flush()
        segment = create_segment(
            session,
            Actor(owner, "cli"),
            SEGMENT,
            {"match": "all", "conditions": [{"field": "consent", "op": "is", "value": "opted_in"}]},
        )
        segment_id = segment.id
    url = state.database.engine.url.render_as_string(hide_password=False)
    state.database.dispose()
    return Seeded(url, owner_token, agent_token, segment_id, ids, time.monotonic() - begun)


# --- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`sigdesk serve` as an operator starts it (worker and broadcast engine included), in its own process."""

    def __init__(self, data_dir: Path, db_url: str, log_file: Path, port: int | None = None, threads: int = 8):
        self.data_dir, self.db_url, self.log_file, self.threads = data_dir, db_url, log_file, threads
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> Server:
        args = [sys.executable, "-m", "sigdesk", "--data-dir", str(self.data_dir), "--database-url", self.db_url]
        args += ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(self.threads)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGDESK_")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_file.open("ab") as log:
            log.write(f"\n--- start {datetime.now(timezone.utc).isoformat()} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=ROOT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"sigdesk serve ended ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2, trust_env=False).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise SystemExit(f"sigdesk serve did not answer /healthz in {timeout:.0f} s:\n{self.tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the power goes or the OOM killer strikes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:]


def database_pids(db_url: str) -> dict[str, int]:
    """The MariaDB server's process, when the database is one on this machine (its CPU is reported too)."""
    if not db_url.startswith("mysql"):
        return {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    return {"MariaDB": int(entry.name)}
            except OSError:
                continue
    return {}


def sending_pids(server_pid: int) -> dict[str, int]:
    """The server's broadcast sending process (sigdesk.broadcasts.sender): its CPU is the server's too."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if parent == server_pid and b"broadcasts.sender" in command:
                return {"sending process": int(entry.name)}
    return {}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux, /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the API -------------------------------------------------------------------------------------


def api_client(server_url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server_url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120, trust_env=False
    )


def create_broadcast(api: httpx.Client, seeded: Seeded, rate: int, audience: str, name: str) -> int:
    if audience == "segment":
        chosen: dict[str, Any] = {"segment_id": seeded.segment_id}
    else:
        chosen = {"contact_ids": seeded.contact_ids}
    body = {
        "name": name,
        "template": {"name": TEMPLATE, "language": LANGUAGE, "variables": {"1": "{contact.first_name|there}"}},
        "audience": chosen,
        "rate_per_second": rate,
    }
    answer = api.post("/broadcasts", json=body)
    if answer.status_code != 201:
        raise SystemExit(f"POST /api/v1/broadcasts: {answer.status_code} {answer.text[:1000]}")
    return int(answer.json()["id"])


def start_broadcast(api: httpx.Client, broadcast_id: int) -> dict[str, Any]:
    answer = api.post(f"/broadcasts/{broadcast_id}/start")
    if answer.status_code != 200:
        raise SystemExit(f"POST /api/v1/broadcasts/{broadcast_id}/start: {answer.status_code} {answer.text[:1000]}")
    return answer.json()


def get_broadcast(api: httpx.Client, broadcast_id: int) -> dict[str, Any]:
    answer = api.get(f"/broadcasts/{broadcast_id}")
    answer.raise_for_status()
    return answer.json()


POLL_PROBLEMS: Counter = Counter()


def wait_until_final(
    api: httpx.Client, broadcast_id: int, timeout: float, say=print, every: float = 10.0
) -> tuple[dict[str, Any], float]:
    """Poll until completed or cancelled (a pause is reported, and waited out until the timeout).

    Returns the last answer and the time.time() when completion was first seen (polled every 0.2 s once
    nothing is pending, every second before)."""
    deadline = time.monotonic() + timeout
    next_say = time.monotonic() + every
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            data = get_broadcast(api, broadcast_id)
        except (httpx.TransportError, httpx.HTTPStatusError) as problem:
            # the server is restarting, or busy (503): counted, and asked again
            POLL_PROBLEMS[getattr(getattr(problem, "response", None), "status_code", type(problem).__name__)] += 1
            time.sleep(0.5)
            continue
        if data.get("status") in ("completed", "cancelled"):
            return data, time.time()
        if time.monotonic() >= next_say:
            next_say += every
            counts = data.get("counts") or {}
            busy = {key: value for key, value in counts.items() if value}
            extra = f" ({data.get('pause_kind')}: {data.get('pause_reason')})" if data.get("status") == "paused" else ""
            say(f"    {data.get('status')}{extra} {busy}")
        # every API request notes its token's use (a write on SQLite): ask often only near the end
        time.sleep(0.2 if not (data.get("counts") or {}).get("pending") else 1.0)
    raise SystemExit(f"broadcast {broadcast_id} not final within {timeout:.0f} s: {data}")


# --- the inbox while sending ---------------------------------------------------------------------


def signed_in(server_url: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=server_url, timeout=60, trust_env=False)
    for _attempt in range(20):
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if token is None:
            raise SystemExit("the login page has no CSRF token")
        response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)})
        if response.status_code != 503:
            break
        time.sleep(1)
    if response.status_code != 302:
        raise SystemExit(f"could not sign in as {email}: {response.status_code}")
    return client


@dataclass
class Probes:
    """The inbox list as an agent sees it (and, with `with_api`, the API's conversation list), one request at
    a time every `interval` seconds, like a person refreshing; samples are (time.time() sent, ms)."""

    server_url: str
    agent_token: str
    interval: float
    with_api: bool = False
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {"inbox": [], "api": []})

    def __post_init__(self) -> None:
        self.page = signed_in(self.server_url, AGENT)
        self.api = api_client(self.server_url, self.agent_token)
        self.errors: dict[str, Counter] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def once(self) -> None:
        targets = [("inbox", self.page, "/inbox/list")]
        if self.with_api:
            targets.append(("api", self.api, "/conversations"))
        for name, client, path in targets:
            sent = time.time()
            began = time.perf_counter()
            try:
                status = client.get(path).status_code
            except httpx.TimeoutException:
                status = 0
            spent = (time.perf_counter() - began) * 1000
            if status != 200:  # counted, and its time stays in the percentiles
                self.errors.setdefault(name, Counter())[status] += 1
            self.samples[name].append((sent, spent))

    def _paced(self, requests: int | None) -> None:
        due = time.monotonic()
        done = 0
        while not self._stop.is_set() and (requests is None or done < requests):
            self.once()
            done += 1
            due = max(due + self.interval, time.monotonic())
            self._stop.wait(max(0.0, due - time.monotonic()))

    def run_for(self, requests: int) -> None:
        self._paced(requests)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._paced, args=(None,), name="probes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def between(self, name: str, since: float, until: float) -> list[float]:
        return [spent for sent, spent in self.samples[name] if since <= sent <= until]

    def count(self) -> int:
        return sum(len(values) for values in self.samples.values())

    def count_since(self, since: float) -> int:
        return sum(1 for values in self.samples.values() for sent, _spent in values if sent >= since)

    def close(self) -> None:
        self.page.close()
        self.api.close()


# --- figures -------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def busiest_second(times: list[float]) -> tuple[int, float]:
    """The most sends in any one-second window [t, t + 1) starting at a send, and where it starts."""
    ordered = sorted(times)
    best, best_at, end = 0, ordered[0] if ordered else 0.0, 0
    for start, moment in enumerate(ordered):
        while end < len(ordered) and ordered[end] < moment + 1.0:
            end += 1
        if end - start > best:
            best, best_at = end - start, moment
    return best, best_at


def duplicates(sent: list[tuple[str, float]]) -> int:
    return len(sent) - len({to for to, _at in sent})


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def reference_ms() -> float:
    """A fixed piece of Python work (JSON out and back, as every send's line takes), best of five: runs on
    different machines (or one machine on different days: a shared host's speed varies) compare through it."""
    payload = {"messaging_product": "whatsapp", "to": "4915110000000", "type": "template", "id": 12345}
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for number in range(20_000):
            json.loads(json.dumps({**payload, "id": number}))
        best = min(best, time.perf_counter() - began)
    return best * 1000


# --- one run -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> bool:
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fake = FakeGraphProcess(logs / "fake-graph.log", args.graph_delay, args.graph_server)
    server: Server | None = None
    probes: Probes | None = None
    try:
        seeded = prepare(work / "data", args.db, args.count, fake.url)
        print(f"seeded {args.count:,} opted-in contacts with conversations in {seeded.seconds:.1f} s")
        server = Server(work / "data", seeded.db_url, logs / "server.log", threads=args.threads).start()
        print(f"sigdesk serve pid {server.pid} at {server.url}; fake Graph API at {fake.url}; logs in {logs}")
        owner = api_client(server.url, seeded.owner_token)
        probes = Probes(server.url, seeded.agent_token, args.probe_interval, args.probe_api)
        gc.collect()
        gc.freeze()  # the seeding's objects: a full pass over them paused this client's timings by 150 ms
        probes.run_for(10)  # warm-up: first requests fill caches
        cpu_before = server.cpu_seconds()
        begun = time.time()
        probes.run_for(args.baseline_requests)
        baseline_cpu_per_probe = (server.cpu_seconds() - cpu_before) / probes.count_since(begun)
        baseline = {name: probes.between(name, begun, time.time()) for name in probes.samples}

        broadcast_id = create_broadcast(owner, seeded, args.rate, args.audience, f"Bench {args.count} at {args.rate}/s")
        probes.start()
        probes_before = probes.count()
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.pid), "--threads"]
                + ["--format", "raw", "--rate", "50", "--output", str(args.py_spy), "--nonblocking"]
                + (["--gil"] if args.py_spy_gil else []),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10  # the server starts it once a broadcast exists
        while not (sending := sending_pids(server.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        others = {**sending, "fake Graph API": fake.proc.pid, **database_pids(seeded.db_url)}
        others_start = {name: cpu_seconds(pid) for name, pid in others.items()}
        cpu_start = server.cpu_seconds()
        start_called = time.time()
        started = start_broadcast(owner, broadcast_id)
        start_returned = time.time()
        print(
            f"broadcast {broadcast_id}: start answered {started.get('status')} with "
            f"{started.get('recipient_count')} recipients in {start_returned - start_called:.2f} s"
        )
        expected = args.count / args.rate
        final, completed_seen = wait_until_final(owner, broadcast_id, timeout=3 * expected + 120)
        cpu_spent = server.cpu_seconds() - cpu_start
        others_spent = {name: cpu_seconds(pid) - others_start[name] for name, pid in others.items()}
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        probes.stop()
        probes_during = probes.count() - probes_before
        sent = fake.sent()
    finally:
        if probes is not None:
            probes.stop()
            probes.close()
        if server is not None:
            server.stop()
        fake.stop()

    counts = final.get("counts") or {}
    times = sorted(at for _to, at in sent)
    print(f"final: {final.get('status')}, counts { ({k: v for k, v in counts.items() if v}) }")
    if not times:
        print("FAIL nothing reached the fake Graph API")
        return False
    first, last = times[0], times[-1]
    n = len(times)
    (work / "sent.json").write_text(json.dumps({"start_called": start_called, "sent": sent}))
    buckets = [0] * (int(last - start_called) // 10 + 1)
    for moment in times:
        buckets[int(moment - start_called) // 10] += 1
    print("sends per second in each 10 s from the start call: " + " ".join(f"{b / 10:.0f}" for b in buckets))
    results: list[bool] = []

    to_complete = completed_seen - start_called
    to_last = last - start_called
    deviation = to_complete / expected - 1
    ok = abs(deviation) <= 0.05
    # the issue sets the duration for 80/s (125 s ± 5 %); at other rates, for information: the start call's
    # freezing of the audience counts in it, and at 500/s that alone is 1 to 3 % of 20 s
    judged = args.rate == 80
    if judged:
        results.append(ok)
    print(
        f"{verdict(ok) if judged else 'info'} duration: start -> completed {to_complete:.1f} s, start -> last "
        f"send {to_last:.1f} s, first -> last send {last - first:.1f} s; expected {args.count} / {args.rate}/s = "
        f"{expected:.1f} s ({deviation:+.1%}, target ± 5 % at 80/s)"
    )

    busiest, busiest_at = busiest_second(times)
    ceiling = args.rate * 1.05
    ok = busiest <= ceiling
    results.append(ok)
    print(
        f"{verdict(ok)} busiest one-second window: {busiest} sends (at +{busiest_at - start_called:.1f} s), "
        f"{busiest / args.rate:.3f} x rate; ceiling rate * 1.05 = {ceiling:.0f}"
    )

    achieved = n / (last - start_called)
    steady = (n - 1) / (last - first) if n > 1 else float("nan")
    ok = achieved >= 0.95 * args.rate
    results.append(ok)
    print(
        f"{verdict(ok)} achieved rate: {achieved:.1f}/s from the start call ({achieved / args.rate:.1%} of "
        f"{args.rate}/s; target >= 95 %), {steady:.1f}/s between first and last send"
    )

    for name, label in (("inbox", "GET /inbox/list (agent)"), ("api", "GET /api/v1/conversations (agent)")):
        if not probes.samples[name]:
            continue
        during = probes.between(name, start_returned, last)
        base = percentile(baseline[name], 0.95)
        p95 = percentile(during, 0.95)
        ok = p95 < 100
        if name == "inbox":  # the API list is shown beside it, for information
            results.append(ok)
        print(
            f"{verdict(ok) if name == 'inbox' else 'info'} {label} while sending: p50 {percentile(during, 0.5):.1f} ms, p95 {p95:.1f} ms "
            f"(n={len(during)}; target < 100 ms); baseline before: p50 {percentile(baseline[name], 0.5):.1f} ms, "
            f"p95 {base:.1f} ms (n={len(baseline[name])}); p95 ratio {p95 / base:.2f}"
            + (f"; not 200: {dict(probes.errors[name])} (0: timed out after 60 s)" if name in probes.errors else "")
        )
    if POLL_PROBLEMS:
        print(f"status polls that failed and were repeated: {dict(POLL_PROBLEMS)}")

    net = cpu_spent - probes_during * baseline_cpu_per_probe
    print(
        f"server CPU: {cpu_spent:.1f} s for {n} sends = {cpu_spent / n * 1000:.2f} ms per message; less "
        f"{probes_during} inbox requests at the baseline's {baseline_cpu_per_probe * 1000:.2f} ms each: "
        f"{net / n * 1000:.2f} ms per message ({cpu_spent / to_complete:.0%} of one core while sending)"
    )

    if "sending process" in others_spent:
        both = cpu_spent + others_spent["sending process"]
        print(
            f"server with its sending process: {both / n * 1000:.2f} ms per message "
            f"({(net + others_spent['sending process']) / n * 1000:.2f} ms less the inbox requests)"
        )
    print(
        "other processes' CPU per message while sending: "
        + ", ".join(f"{name} {spent / n * 1000:.2f} ms" for name, spent in others_spent.items())
        + f"; the fake saw {fake.connections} connections for {n} sends"
    )

    # what the target asks of this machine: every process's CPU per message at that rate, in cores
    everything = net + sum(others_spent.values())
    ours = everything - others_spent.get("fake Graph API", 0.0)
    print(
        f"info CPU the target rate needs: {everything / n * args.rate:.2f} of {os.cpu_count()} cores in all, "
        f"{ours / n * args.rate:.2f} for SigDesk alone (without the fake Graph API, which is Meta's on a real "
        f"install); machine reference {args.reference_ms:.0f} ms"
    )

    dupes = duplicates(sent)
    ok = dupes == 0 and n == args.count and counts.get("sent", 0) == args.count
    results.append(ok)
    print(
        f"{verdict(ok)} sends at the fake {n} (expected {args.count}), duplicates {dupes}, "
        f"recipients sent {counts.get('sent', 0)}"
    )
    print(
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (was {args.load_before:.1f} at the start)"
    )
    print("ALL PASS" if all(results) else "SOME FIGURES MISSED")
    return all(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="recipients (default 10,000)")
    parser.add_argument("--rate", type=int, default=80, help="the broadcast's messages per second (default 80)")
    parser.add_argument("--db", help="database URL (default: SQLite in the data dir); a MariaDB database is re-created")
    parser.add_argument("--data-dir", type=Path, help="work folder (default: a temp dir, removed afterwards)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads of sigdesk serve")
    parser.add_argument("--audience", choices=("segment", "contacts"), default="segment")
    parser.add_argument("--probe-interval", type=float, default=0.25, help="seconds between inbox list requests")
    parser.add_argument(
        "--probe-api", action="store_true", help="also time GET /api/v1/conversations (reported, not judged)"
    )
    parser.add_argument("--baseline-requests", type=int, default=120)
    parser.add_argument("--graph-delay", type=float, default=0.0, help="seconds the fake waits before answering")
    parser.add_argument(
        "--graph-server",
        choices=("waitress", "werkzeug"),
        default="waitress",
        help="what serves the fake: waitress keeps connections alive as Meta does (default); werkzeug, as in the "
        "tests, closes each one",
    )
    parser.add_argument("--py-spy", type=Path, help="record the server with py-spy while it sends (raw stacks)")
    parser.add_argument("--py-spy-gil", action="store_true", help="with --py-spy: only the thread holding the GIL")
    parser.add_argument("--fake-graph", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_graph:
        serve_fake_graph(args.graph_delay, args.graph_server)
        return
    args.load_before = os.getloadavg()[0]
    args.reference_ms = reference_ms()
    print(
        f"{args.count:,} recipients at {args.rate}/s on {args.db or 'SQLite'}; "
        f"machine reference {args.reference_ms:.0f} ms (see reference_ms)"
    )
    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        ok = run(args, args.data_dir)
    else:
        work = Path(tempfile.mkdtemp(prefix="sigdesk-bench-broadcast-"))
        try:
            ok = run(args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
