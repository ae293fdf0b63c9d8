"""Inbox benchmark on a seeded database (tests/perf/seed_inbox.py): list, thread, search, live updates.

    .venv/bin/python tests/perf/seed_inbox.py --data-dir /tmp/sigdesk-bench
    .venv/bin/python tests/perf/bench_inbox.py --data-dir /tmp/sigdesk-bench
    .venv/bin/python tests/perf/bench_inbox.py --data-dir /tmp/sigdesk-bench-maria --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_inbox

SigDesk runs under waitress (sigdesk.server.ServerThread) in a subprocess, so the client's threads
do not share its GIL. Server time is the time from the request reaching the WSGI app to the response
headers (the body is rendered by then), sent back in a Server-Timing header by a timing wrapper
around the app; a bare 200 endpoint on the same app and server is the baseline. Requests are sent one
at a time. Targets (issue 4): p95 < 50 ms for list and thread, < 100 ms for search; live update
latency from webhook POST to the event at 20 connected clients < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sigdesk.whatsapp.webhook import signature_header  # noqa: E402

SECRET = "bench-app-secret"
PASSWORD = "correct horse battery"
QUERIES = (
    "order",
    "refund",
    "warranty",
    "delivery tomorrow",
    "refu",
    "invoice 4711",
    "crème",
    "maria",
    "müller",
    "4915100",
    "hello thanks",
    "parcel arrived",
    "kuchen",
    "zzzznotfound",
    "is my order",
)


# --- server side (subprocess) ------------------------------------------------------------------


class Timing:
    """Server time per request, up to the response headers, reported in a Server-Timing header."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()

        def start(status, headers, exc_info=None):
            headers.append(("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.3f}"))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def serve(data_dir: str, db_url: str | None, worker: bool) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    from sigdesk.app import create_app
    from sigdesk.config import Config
    from sigdesk.server import ServerThread
    from sigdesk.settings import services as settings
    from sigdesk.web import public

    app = create_app(Config.from_env(data_dir=data_dir, database_url=db_url, bcrypt_rounds=4))
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, "whatsapp.app_secret", SECRET)
    app.add_url_rule("/bench/bare", "bench_bare", public(lambda: "ok"))
    app.wsgi_app = Timing(app.wsgi_app)
    server = ServerThread(app).start()
    if not worker:
        server.worker.stop()
    print(server.port, flush=True)
    sys.stdin.read()
    server.stop()


def start_server(data_dir: str, db_url: str | None, worker: bool) -> tuple[subprocess.Popen, str]:
    args = [sys.executable, __file__, "--serve", "--data-dir", data_dir] + (["--db", db_url] if db_url else [])
    args += [] if worker else ["--no-worker"]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, f"http://127.0.0.1:{port}"


# --- client side -------------------------------------------------------------------------------


def signed_in(url: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    for _attempt in range(20):  # 503 while a start-up job holds SQLite's write lock
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        if response.status_code != 503:
            break
        print(f"  sign-in as {email}: 503 (database busy), retrying")
        time.sleep(1)
    if response.status_code != 302:
        raise SystemExit(f"could not sign in as {email} (seeded with seed_inbox.py?)")
    return client


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(client: httpx.Client, paths: list[str]) -> tuple[list[float], list[float]]:
    server, wall = [], []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        wall.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text[:200]}")
        server.append(float(response.headers["server-timing"].split("dur=")[1]))
    return server, wall


def report(name: str, server: list[float], wall: list[float], baseline: float | None, target: float | None) -> None:
    p50, p95 = percentile(server, 0.5), percentile(server, 0.95)
    ratio = f"{p95 / baseline:6.1f}x" if baseline else "      "
    verdict = "" if target is None else ("ok" if p95 < target else f"MISSES {target:.0f} ms")
    print(
        f"  {name:<34} n={len(server):<4} server p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  {ratio}  "
        f"(client p50 {percentile(wall, 0.5):6.2f}, p95 {percentile(wall, 0.95):6.2f})  {verdict}"
    )


def conversation_ids(db_url: str | None, data_dir: str, count: int) -> tuple[list[int], int]:
    """A random sample of conversations and the one with the most messages."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url or f"sqlite:///{Path(data_dir) / 'sigdesk.db'}")
    with engine.connect() as connection:
        total = connection.execute(text("SELECT max(id) FROM conversations")).scalar_one()
        biggest = connection.execute(
            text("SELECT conversation_id FROM messages GROUP BY conversation_id ORDER BY count(*) DESC LIMIT 1")
        ).scalar_one()
        messages = connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
    engine.dispose()
    print(f"database: {total:,} conversations, {messages:,} messages")
    rng = random.Random(7)
    return [rng.randint(1, total) for _ in range(count)], biggest


def bench_requests(url: str, db_url: str | None, data_dir: str, count: int) -> None:
    owner = signed_in(url, "owner@bench.example")
    agent = signed_in(url, "agent1@bench.example")
    sample, biggest = conversation_ids(db_url, data_dir, count)
    measure(owner, [f"/inbox/c/{cid}" for cid in sample[:10]])
    for client in (owner, agent):
        measure(client, ["/bench/bare", "/inbox/list", "/api/v1/search?q=order"] * 5)

    server, wall = measure(owner, ["/bench/bare"] * count)
    baseline = percentile(server, 0.95)
    print("requests, one at a time (server time = WSGI app until response headers):")
    report("baseline: bare 200", server, wall, None, None)
    report("list (owner, open)", *measure(owner, ["/inbox/list"] * count), baseline, 50)
    report("list (owner, any status)", *measure(owner, ["/inbox/list?status=any"] * count), baseline, 50)
    report("list (agent, open)", *measure(agent, ["/inbox/list"] * count), baseline, 50)
    report(
        "list (agent, mine, any status)", *measure(agent, ["/inbox/list?view=mine&status=any"] * count), baseline, 50
    )
    report("thread latest 50 (random)", *measure(owner, [f"/inbox/c/{cid}" for cid in sample]), baseline, 50)
    report(f"thread latest 50 (largest, #{biggest})", *measure(owner, [f"/inbox/c/{biggest}"] * count), baseline, 50)
    report(
        "api messages latest 50 (random)",
        *measure(owner, [f"/api/v1/conversations/{cid}/messages?limit=50" for cid in sample]),
        baseline,
        50,
    )
    queries = [QUERIES[n % len(QUERIES)] for n in range(count)]
    report("search (owner)", *measure(owner, [f"/api/v1/search?q={q}" for q in queries]), baseline, 100)
    report("search (agent)", *measure(agent, [f"/api/v1/search?q={q}" for q in queries]), baseline, 100)
    slowest = []
    for query in QUERIES:
        server, _wall = measure(owner, [f"/api/v1/search?q={query}"] * 5)
        slowest.append((statistics.median(server), query))
    print(
        "  search by query (owner, median of 5): "
        + ", ".join(f"{q!r} {ms:.1f}" for ms, q in sorted(slowest, reverse=True))
    )
    owner.close()
    agent.close()


# --- live updates ------------------------------------------------------------------------------


class Listener:
    def __init__(self, url: str, cookies) -> None:
        self.arrivals: list[float] = []
        self.ready = threading.Event()
        self.client = httpx.Client(base_url=url, cookies=cookies, timeout=httpx.Timeout(10, read=60))
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            with self.client.stream("GET", "/events") as response:
                if response.status_code != 200:
                    raise SystemExit(f"/events answered {response.status_code}")
                kind = None
                for line in response.iter_lines():
                    if line.startswith("id:"):
                        self.ready.set()
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "message.created":
                        self.arrivals.append(time.perf_counter())
                    elif line == "":
                        kind = None
        except httpx.HTTPError:
            pass


def delivery(serial: int, wa_id: str) -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "900800700600500",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "100200300400500"},
                            "contacts": [{"profile": {"name": "Bench Customer"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": f"wamid.live.{time.time_ns()}.{serial}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": f"live update number {serial}, is my order ready?"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode()


def bench_live(url: str, clients: int, posts: int) -> None:
    owner = signed_in(url, "owner@bench.example")
    listeners = [Listener(url, owner.cookies) for _ in range(clients)]
    for listener in listeners:
        if not listener.ready.wait(10):
            raise SystemExit("an SSE client did not connect")
    poster = httpx.Client(base_url=url, timeout=30)
    latencies, worst = [], []
    rng = random.Random(3)
    for serial in range(posts):
        raw = delivery(serial, f"49{1510000000 + rng.randint(1, 50_000) * 37}")
        started = time.perf_counter()
        response = poster.post(
            "/webhooks/whatsapp",
            content=raw,
            headers={"X-Hub-Signature-256": signature_header(SECRET, raw), "Content-Type": "application/json"},
        )
        if response.status_code != 200:
            raise SystemExit(f"webhook answered {response.status_code}: {response.text[:200]}")
        deadline = time.perf_counter() + 5
        while any(len(listener.arrivals) <= serial for listener in listeners) and time.perf_counter() < deadline:
            time.sleep(0.0005)
        got = [
            (listener.arrivals[serial] - started) * 1000 for listener in listeners if len(listener.arrivals) > serial
        ]
        if len(got) < clients:
            raise SystemExit(f"post {serial}: only {len(got)} of {clients} clients got the event within 5 s")
        latencies.extend(got)
        worst.append(max(got))
        time.sleep(0.02)
    print(f"live updates: {posts} signed webhook POSTs, {clients} SSE clients; latency POST -> event at each client:")
    print(
        f"  all deliveries n={len(latencies)}: p50 {percentile(latencies, 0.5):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms, "
        f"max {max(latencies):.1f} ms; slowest client per POST: p50 {percentile(worst, 0.5):.1f} ms, "
        f"p95 {percentile(worst, 0.95):.1f} ms  {'ok' if max(latencies) < 1000 else 'MISSES 1 s'}"
    )
    for listener in listeners:
        listener.client.close()
    poster.close()
    owner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--db", help="database URL (default: SQLite in the data dir)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="stop the background worker (its jobs' queries compete with the requests measured)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.data_dir, args.db, not args.no_worker)
        return
    proc, url = start_server(args.data_dir, args.db, not args.no_worker)
    try:
        print(
            f"SigDesk on {url} ({args.db or 'SQLite'}; background worker {'stopped' if args.no_worker else 'running'})"
        )
        print("load average before: %.1f %.1f %.1f (figures are only comparable on a quiet machine)" % os.getloadavg())
        bench_requests(url, args.db, args.data_dir, args.requests)
        bench_live(url, args.clients, args.posts)
        print("load average after: %.1f %.1f %.1f" % os.getloadavg())
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
