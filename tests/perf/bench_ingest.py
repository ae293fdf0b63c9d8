"""Webhook ingest benchmark: signed deliveries against SigDesk under waitress, compared with bare Flask.

Run from the project root:

    .venv/bin/python tests/perf/bench_ingest.py                     # SQLite in a temp dir, 20,000 deliveries
    .venv/bin/python tests/perf/bench_ingest.py --count 2000        # quicker
    .venv/bin/python tests/perf/bench_ingest.py --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench

The server runs in a subprocess so the client's threads do not share its GIL. Deliveries are drawn
from /work/shared/meta-webhooks (or tests/fixtures/webhooks when that is absent) with every wamid
rewritten to be unique; 10% are sent a second time to exercise deduplication. At the end the
database must hold exactly the expected messages, status events and deliveries.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sigdesk.whatsapp.webhook import parse, signature_header  # noqa: E402
from tests.mysql import recreate_database  # noqa: E402

SECRET = "bench-app-secret"
SHARED = ROOT.parent / "shared" / "meta-webhooks"
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"


# --- server side (subprocess) ------------------------------------------------------------------


def serve(kind: str, data_dir: str, db_url: str | None, threads: int) -> None:
    """Run one server until the parent closes our stdin, after printing the port it listens on."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    if kind == "bare":
        serve_bare(threads)
    else:
        serve_sigdesk(data_dir, db_url, threads)


def serve_bare(threads: int) -> None:
    """A bare Flask 200-OK endpoint with the waitress settings of sigdesk.server.ServerThread."""
    from flask import Flask, request
    from waitress.server import create_server

    app = Flask("bare")

    @app.post("/webhooks/whatsapp")
    def hook():
        request.get_data(cache=False)
        return "ok"

    server = create_server(
        app,
        host="127.0.0.1",
        port=0,
        threads=threads,
        ident="SigDesk",
        max_request_body_size=16 * 1024 * 1024 + 65536,
        clear_untrusted_proxy_headers=True,
    )
    threading.Thread(target=server.run, daemon=True).start()
    print(server.effective_port, flush=True)
    sys.stdin.read()


def serve_sigdesk(data_dir: str, db_url: str | None, threads: int) -> None:
    from sigdesk.app import create_app
    from sigdesk.auth import services as accounts
    from sigdesk.config import Config
    from sigdesk.server import ServerThread
    from sigdesk.settings import services as settings

    app = create_app(Config.from_env(data_dir=data_dir, database_url=db_url, bcrypt_rounds=4))
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        if accounts.user_count(session) == 0:
            accounts.create_user(session, "bench@example.com", "Bench", "owner", "correct horse battery", rounds=4)
        settings.set_value(session, state.cipher, "whatsapp.app_secret", SECRET)
    server = ServerThread(app, threads=threads).start()
    print(server.port, flush=True)
    sys.stdin.read()
    server.stop()
    intake = app.extensions.get("sigdesk.inbound.intake")
    if intake is not None:
        print(f"group commit: {intake.batches} batches", file=sys.stderr)


def start_server(kind: str, data_dir: str, db_url: str | None, threads: int) -> tuple[subprocess.Popen, str]:
    args = [sys.executable, __file__, "--serve", kind, "--data-dir", data_dir, "--threads", str(threads)]
    if db_url:
        args += ["--db", db_url]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        raise SystemExit(f"{kind} server did not start")
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- deliveries --------------------------------------------------------------------------------


def corpus() -> list[dict]:
    folder = SHARED if SHARED.is_dir() else FIXTURES
    bodies = []
    for path in sorted(folder.rglob("*.json")):
        data = json.loads(path.read_bytes())
        if isinstance(data, dict) and isinstance(data.get("entry"), list):
            bodies.append(data)
    if not bodies:
        raise SystemExit(f"no webhook bodies under {folder}")
    print(f"corpus: {len(bodies)} bodies from {folder}")
    return bodies


def uniquify(body: dict, serial: int) -> dict:
    """Give every message and status its own wamid so each delivery stores new rows."""
    body = json.loads(json.dumps(body))
    for entry in body.get("entry", []):
        for change in entry.get("changes", []) if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            for key in ("messages", "message_echoes", "statuses"):
                for index, item in enumerate(value.get(key) or []):
                    if isinstance(item, dict) and "id" in item:
                        item["id"] = f"wamid.bench.{serial}.{key[0]}{index}"
            for item in value.get("user_preferences") or []:
                if isinstance(item, dict):
                    item["timestamp"] = 1731705721 + serial
            if "event" in value or "message_template_name" in value:
                value["bench_serial"] = serial  # distinct account/template events, as in real life
    return body


def build(count: int, redeliver: float, seed: int = 7) -> tuple[list[bytes], dict[str, int]]:
    bodies = corpus()
    rng = random.Random(seed)
    originals = [json.dumps(uniquify(bodies[i % len(bodies)], i)).encode() for i in range(count)]
    wamids: set[str] = set()
    statuses: set[tuple[str, str]] = set()
    events = 0
    for raw in originals:
        parsed = parse(raw)
        events += parsed.event_count
        for message in parsed.messages:
            if message.type != "reaction" and (message.wa_id or message.user_id):
                wamids.add(message.wamid)
        for status in parsed.statuses:
            statuses.add((status.wamid, status.status))
    again = rng.sample(originals, int(count * redeliver))
    sends = originals + again
    rng.shuffle(sends)
    expected = {"messages": len(wamids), "status_events": len(statuses), "deliveries": len(sends)}
    expected["events"] = events + sum(parse(raw).event_count for raw in again)
    return sends, expected


# --- client ------------------------------------------------------------------------------------


def blast(url: str, sends: list[bytes], concurrency: int) -> tuple[float, float, float, dict[int, int]]:
    signed = [(raw, signature_header(SECRET, raw)) for raw in sends]
    next_index = iter(range(len(signed)))
    lock = threading.Lock()
    latencies: list[float] = []
    codes: dict[int, int] = {}

    def worker() -> None:
        mine: list[float] = []
        my_codes: dict[int, int] = {}
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    break
                raw, signature = signed[index]
                started = time.perf_counter()
                response = client.post(
                    "/webhooks/whatsapp",
                    content=raw,
                    headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                )
                mine.append(time.perf_counter() - started)
                my_codes[response.status_code] = my_codes.get(response.status_code, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, n in my_codes.items():
                codes[code] = codes.get(code, 0) + n

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, percentile(latencies, 0.5), percentile(latencies, 0.99), codes


WRK_SCRIPT = r"""
-- Sends each pre-signed body once, split across wrk's threads. Each thread leaves a marker file
-- when it is ready and when its share is answered; the caller times those and then stops wrk.
local bodies, sigs = {}, {}
local f = assert(io.open(os.getenv("BENCH_FILE"), "rb"))
while true do
  local header = f:read("*l")
  if not header then break end
  local sig, size = header:match("^(%S+) (%d+)$")
  sigs[#sigs + 1] = sig
  bodies[#bodies + 1] = f:read(tonumber(size))
end
f:close()
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
  nextindex = id + 1
  share = 0
  for i = id + 1, #bodies, nthreads do share = share + 1 end
  answered, good = 0, 0
  local ready = assert(io.open(os.getenv("BENCH_FILE") .. ".ready." .. id, "w"))
  ready:close()
end
function request()
  if not primed then
    primed = true  -- wrk calls request() once on thread 0 to check it, and sends nothing
    return wrk.format("GET", "/bench-filler-404")
  end
  local i = nextindex
  if i > #bodies then return wrk.format("GET", "/bench-filler-404") end
  nextindex = nextindex + nthreads
  return wrk.format("POST", "/webhooks/whatsapp",
    {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sigs[i]}, bodies[i])
end
function delay()
  if nextindex > #bodies then return 1000 end  -- fillers stay rare, so they cost the server nothing
  return 0
end
function response(status, headers, body)
  if status == 404 then return end  -- a filler, sent after this connection's share
  answered = answered + 1
  if status == 200 then good = good + 1 end
  if answered == share then
    local marker = assert(io.open(os.getenv("BENCH_FILE") .. ".done." .. id, "w"))
    marker:close()
  end
end
function done(summary, latency, requests)
  local total, ok = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("answered")
    ok = ok + thread:get("good")
  end
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f\n", total, ok,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6))
end
"""


def blast_wrk(
    url: str, sends: list[bytes], concurrency: int, folder: str
) -> tuple[float, float, float, dict[int, int]]:
    """wrk (C, one process) as the client, so the client is never what limits the bare endpoint.

    Returns elapsed seconds, p50 and p99 in seconds, and the codes; wrk's percentiles also count the
    filler requests (answered 404) that connections send once their thread's share is out."""
    import shutil

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --client python")
    bodies = Path(folder) / "bodies.bin"
    with bodies.open("wb") as out:
        for raw in sends:
            out.write(f"{signature_header(SECRET, raw)} {len(raw)}\n".encode() + raw)
    script = Path(folder) / "bench.lua"
    script.write_text(WRK_SCRIPT)
    threads = 2
    env = {**os.environ, "BENCH_FILE": str(bodies), "BENCH_THREADS": str(threads)}
    markers = lambda kind: [Path(f"{bodies}.{kind}.{n}") for n in range(threads)]  # noqa: E731
    for marker in markers("ready") + markers("done"):
        marker.unlink(missing_ok=True)
    proc = subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{concurrency}", "-d600s", "--timeout", "60s", "-s", str(script), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    while not all(marker.exists() for marker in markers("ready")) and proc.poll() is None:
        time.sleep(0.002)
    started = time.perf_counter()
    while not all(marker.exists() for marker in markers("done")) and proc.poll() is None:
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    proc.send_signal(signal.SIGINT)  # wrk then prints its summary and calls done()
    out, err = proc.communicate(timeout=60)
    line = next((line for line in out.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out}\n{err}")
    total, ok, p50, p99, _duration = line.split()[1:]
    codes = {200: int(ok)}
    if int(total) != int(ok):
        codes[0] = int(total) - int(ok)
    return float(elapsed), float(p50) / 1000, float(p99) / 1000, codes


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def count_rows(db_url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from sigdesk.db import Database
    from sigdesk.models import Message, MessageStatusEvent, WebhookDelivery

    database = Database(db_url)
    try:
        with database.session() as session:
            counts = {
                "messages": session.scalar(select(func.count()).select_from(Message)),
                "status_events": session.scalar(select(func.count()).select_from(MessageStatusEvent)),
                "deliveries": session.scalar(select(func.count()).select_from(WebhookDelivery)),
                "not_processed": session.scalar(
                    select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.state != "processed")
                ),
            }
    finally:
        database.dispose()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redeliver", type=float, default=0.10)
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument(
        "--client",
        choices=["wrk", "python"],
        default="wrk",
        help="wrk (default; needs Debian's wrk) or httpx threads in this process",
    )
    parser.add_argument("--db", help="database URL (default: SQLite in a temp dir); a MySQL database is recreated")
    parser.add_argument("--serve", choices=["sigdesk", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.data_dir, args.db, args.threads)
        return

    sends, expected = build(args.count, args.redeliver)
    with tempfile.TemporaryDirectory(prefix="sigdesk-bench-") as tmp:
        db_url = args.db or f"sqlite:///{Path(tmp) / 'sigdesk.db'}"
        if db_url.startswith("mysql"):
            recreate_database(db_url)
        results = {}
        cpu: dict[str, float] = {}
        for kind in ("bare", "sigdesk"):
            proc, url = start_server(kind, tmp, db_url, args.threads)
            try:
                blast(url, sends[: min(len(sends), 500)], args.concurrency)  # warm-up
                if kind == "sigdesk":
                    # the warm-up stored rows too: start the measured run on an empty schema
                    stop_server(proc)
                    _empty(db_url)
                    proc, url = start_server(kind, tmp, db_url, args.threads)
                cpu_before = cpu_seconds(proc.pid)
                if args.client == "wrk":
                    elapsed, p50, p99, codes = blast_wrk(url, sends, args.concurrency, tmp)
                else:
                    elapsed, p50, p99, codes = blast(url, sends, args.concurrency)
                cpu[kind] = (cpu_seconds(proc.pid) - cpu_before) / len(sends)
            finally:
                stop_server(proc)
            results[kind] = (elapsed, p50, p99, codes)
            rate = len(sends) / elapsed
            print(
                f"{kind:8s} {len(sends)} requests in {elapsed:.1f} s: {rate:,.0f} req/s, "
                f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
                f"codes {codes}"
            )
        elapsed = results["sigdesk"][0]
        print(f"events/s: {expected['events'] / elapsed:,.0f} ({expected['events']} events incl. redeliveries)")
        ratio = (len(sends) / elapsed) / (len(sends) / results["bare"][0])
        print(f"ratio to bare Flask: {ratio:.2f}")
        print(
            f"server CPU per request: bare {cpu['bare'] * 1e6:.0f} µs, sigdesk {cpu['sigdesk'] * 1e6:.0f} µs, "
            f"ratio {cpu['bare'] / cpu['sigdesk']:.2f} (steadier than wall-clock rates on a busy machine)"
        )
        stored = count_rows(db_url)
        print(f"stored {stored} expected {expected}")
        exact = all(stored[key] == expected[key] for key in ("messages", "status_events", "deliveries"))
        print("stored counts exact:", "yes" if exact and stored["not_processed"] == 0 else "NO")
        if not exact:
            sys.exit(1)


def _empty(db_url: str) -> None:
    from sqlalchemy import delete

    import sigdesk.models  # noqa: F401  (registers every table)
    from sigdesk.db import Base, Database

    database = Database(db_url)
    keep = {"users", "settings", "alembic_version"}
    try:
        with database.session() as session:
            for table in reversed(Base.metadata.sorted_tables):
                if table.name not in keep:
                    session.execute(delete(table))
    finally:
        database.dispose()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
