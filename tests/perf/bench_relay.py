"""Relay benchmark: ingest rate, end-to-end latency and backlog drain, each beside a same-run baseline.

Run from the project root:

    .venv/bin/python tests/perf/bench_relay.py                       # the full run (100,000-event drain)
    .venv/bin/python tests/perf/bench_relay.py --count 5000 --drain-count 10000 --latency-count 200   # quicker

1. Ingest: signed Meta-shaped deliveries POSTed at concurrency 16 (client in separate processes)
   to `sigdesk relay serve` on SQLite, and to a bare WSGI app that reads the body and answers 200
   under the same waitress settings. Target: >= 1,500 POST/s. Every 200 must be in the relay's table.
2. Latency: one delivery at a time at a steady rate, from the start of Meta's POST to the desktop's
   commit of the processed delivery (webhook_deliveries.processed_at). Target: p50 < 100 ms.
3. Drain: 100,000 events already waiting on the relay; SigDesk (`sigdesk serve`) starts and pulls,
   verifies, stores, processes and acknowledges them all. Target: >= 2,000 events/s. Baselines: the
   relay alone (a client that only pulls and acknowledges) and SigDesk's own ingest of the same
   bodies in-process with no relay (store + process per delivery), whose ratio is the relay's cost.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sigdesk.whatsapp.webhook import signature_header  # noqa: E402

SECRET = "bench-app-secret"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


# --- deliveries --------------------------------------------------------------------------------


def delivery(serial: int, tag: str) -> bytes:
    contact = serial % 500
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "900800700600500",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550001111",
                                    "phone_number_id": "100200300400500",
                                },
                                "contacts": [
                                    {"profile": {"name": f"Customer {contact} \u00e9"}, "wa_id": f"1555{contact:07d}"}
                                ],
                                "messages": [
                                    {
                                        "from": f"1555{contact:07d}",
                                        "id": f"wamid.bench.{tag}.{serial}",
                                        "timestamp": str(1731700000 + serial),
                                        "type": "text",
                                        "text": {"body": f"Hello, is order {serial} ready? \U0001f642"},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode("ascii")


def signed(body: bytes) -> tuple[bytes, str]:
    return body, signature_header(SECRET, body)


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment() -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in PROXY_VARIABLES and not key.startswith("SIGDESK_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.returncode}")
        try:
            if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def start(args: list[str], health: str, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=environment()
        )
    wait_up(health, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(2)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_bare(port: int, threads: int) -> None:
    """A WSGI app that does nothing but read the body and answer 200, under the relay's waitress settings."""
    from waitress import serve

    from sigdesk.relay.server import SWITCH_INTERVAL_SECONDS

    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)  # the relay's own setting, so only the app differs

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "2")])
        return [b"ok"]

    serve(
        app,
        host="127.0.0.1",
        port=port,
        threads=threads,
        ident="bare",
        max_request_body_size=4 * 1024 * 1024 + 65536,
        clear_untrusted_proxy_headers=True,
        _quiet=True,
    )


def start_relay(tmp: Path, db_url: str, threads: int, durable: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [
        "-m",
        "sigdesk",
        "--data-dir",
        str(tmp / "relay-data"),
        "relay",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        db_url,
        "--threads",
        str(threads),
    ]
    if durable:
        args.append("--durable")
    return start(args, f"http://127.0.0.1:{port}/healthz", tmp / "relay.log"), f"http://127.0.0.1:{port}"


def add_install(db_url: str, name: str):
    from sigdesk.relay import installs
    from sigdesk.relay.schema import open_relay_database

    database = open_relay_database(db_url)
    try:
        with database.session() as session:
            return installs.create_install(session, name, max_events=10_000_000, max_bytes=100 * 1024**3)
    finally:
        database.dispose()


# --- the POSTing client (separate processes, so it does not share the servers' GIL) --------------


def _client_process(args) -> tuple[dict[int, int], list[float], float, float]:
    host, port, path, items, threads = args
    codes: dict[int, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    queue = iter(items)

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        mine_codes: dict[int, int] = {}
        mine: list[float] = []
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            body, signature = item
            started = time.perf_counter()
            connection.request(
                "POST", path, body=body, headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature}
            )
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            mine_codes[response.status] = mine_codes.get(response.status, 0) + 1
        connection.close()
        with lock:
            latencies.extend(mine)
            for code, n in mine_codes.items():
                codes[code] = codes.get(code, 0) + n

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    began = time.time()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return codes, latencies, began, time.time()


def blast(url: str, path: str, items: list[tuple[bytes, str]], concurrency: int, procs: int) -> dict:
    host, port = url.removeprefix("http://").split(":")
    per = concurrency // procs
    slices = [items[i::procs] for i in range(procs)]
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        results = pool.map(_client_process, [(host, int(port), path, part, per) for part in slices])
    codes: dict[int, int] = {}
    latencies: list[float] = []
    for part_codes, part_latencies, _began, _ended in results:
        latencies.extend(part_latencies)
        for code, n in part_codes.items():
            codes[code] = codes.get(code, 0) + n
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    return {
        "elapsed": elapsed,
        "rate": len(items) / elapsed,
        "codes": codes,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
    }


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# --- 1. ingest ---------------------------------------------------------------------------------


def bench_ingest(tmp: Path, args) -> dict:
    items = [signed(delivery(i, "ingest")) for i in range(args.count)]
    warm = [signed(delivery(i, "warm")) for i in range(min(1000, args.count))]
    results = {}

    port = free_port()
    bare = start(
        [__file__, "--serve-bare", str(port), "--threads", str(args.threads)],
        f"http://127.0.0.1:{port}/",
        tmp / "bare.log",
    )
    try:
        blast(f"http://127.0.0.1:{port}", "/hook/x", warm, args.concurrency, args.client_procs)
        results["bare"] = blast(f"http://127.0.0.1:{port}", "/hook/x", items, args.concurrency, args.client_procs)
    finally:
        stop(bare)

    runs = [("relay", False)] + ([("relay --durable", True)] if args.with_durable else [])
    for name, durable in runs:
        db_url = f"sqlite:///{tmp / (name.replace(' ', '_').replace('-', '') + '.db')}"
        install = add_install(db_url, "bench")
        relay, url = start_relay(tmp, db_url, args.threads, durable)
        try:
            path = f"/hook/{install.hook_path}"
            blast(url, path, warm, args.concurrency, args.client_procs)
            results[name] = blast(url, path, items, args.concurrency, args.client_procs)
        finally:
            stop(relay)
        results[name]["stored"] = stored_events(db_url) - len(warm)
    return results


def stored_events(db_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM relay_events")).scalar()
    engine.dispose()
    return count


# --- SigDesk ---------------------------------------------------------------------------------


def configure_desktop(data_dir: Path, relay_url: str, pairing_code: str) -> None:
    from click.testing import CliRunner

    from sigdesk.cli import main

    runner = CliRunner()
    for argv, stdin in (
        (["settings", "set", "whatsapp.app_secret", "--stdin"], SECRET),
        (["relay", "pair", "--url", relay_url, "--code", pairing_code], None),
    ):
        result = runner.invoke(main, ["--data-dir", str(data_dir), *argv], input=stdin)
        if result.exit_code:
            raise SystemExit(result.output)


def start_desktop(tmp: Path, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = ["-m", "sigdesk", "--data-dir", str(data_dir), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return start(args, f"http://127.0.0.1:{port}/healthz", tmp / f"{data_dir.name}.log"), f"http://127.0.0.1:{port}"


def relay_token(data_dir: Path) -> str:
    from click.testing import CliRunner

    from sigdesk.cli import main

    return (
        CliRunner()
        .invoke(main, ["--data-dir", str(data_dir), "settings", "get", "relay.token", "--reveal"])
        .output.strip()
    )


# --- 2. latency --------------------------------------------------------------------------------


def bench_latency(tmp: Path, args) -> dict:
    import httpx
    from sqlalchemy import create_engine, text

    db_url = f"sqlite:///{tmp / 'latency-relay.db'}"
    install = add_install(db_url, "latency")
    relay, url = start_relay(tmp, db_url, args.threads)
    data_dir = tmp / "latency-desktop"
    desktop = None
    try:
        configure_desktop(data_dir, url, install.pairing_code)
        desktop, _ = start_desktop(tmp, data_dir)
        sent: dict[str, float] = {}
        post_times: list[float] = []
        gap = 1.0 / args.latency_rate
        with httpx.Client(trust_env=False, timeout=30) as client:
            for i in range(20):  # warm-up: the first deliveries create contacts and warm caches
                body, signature = signed(delivery(i, "lwarm"))
                client.post(f"{url}/hook/{install.hook_path}", content=body, headers={"X-Hub-Signature-256": signature})
            time.sleep(2)
            next_at = time.monotonic()
            for i in range(args.latency_count):
                body, signature = signed(delivery(i, "lat"))
                sent[f"wamid.bench.lat.{i}"] = time.time()
                started = time.perf_counter()
                response = client.post(
                    f"{url}/hook/{install.hook_path}", content=body, headers={"X-Hub-Signature-256": signature}
                )
                post_times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                next_at += gap
                time.sleep(max(0.0, next_at - time.monotonic()))
        engine = create_engine(f"sqlite:///{data_dir / 'sigdesk.db'}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                done = connection.execute(
                    text("SELECT count(*) FROM webhook_deliveries WHERE state = 'processed' AND source = 'relay'")
                ).scalar()
            if done >= args.latency_count + 20:
                break
            time.sleep(0.2)
        latencies = []
        with engine.connect() as connection:
            for raw, processed_at in connection.execute(text("SELECT raw, processed_at FROM webhook_deliveries")):
                wamid = json.loads(raw)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
                if wamid in sent:
                    when = _utc_timestamp(processed_at)
                    latencies.append(when - sent[wamid])
        engine.dispose()
    finally:
        if desktop is not None:
            stop(desktop)
        stop(relay)
    return {
        "count": len(latencies),
        "p50": pct(latencies, 0.5),
        "p95": pct(latencies, 0.95),
        "p99": pct(latencies, 0.99),
        "post_p50": pct(post_times, 0.5),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    }


def _utc_timestamp(value) -> float:
    from datetime import datetime

    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=timezone.utc).timestamp()


# --- 3. drain ----------------------------------------------------------------------------------


def preload(db_url: str, install_id: int, count: int, tag: str) -> None:
    """Put `count` events straight into the relay's table: the drain is measured, not the ingest."""
    from sqlalchemy import create_engine, insert, text

    from sigdesk.db import utcnow
    from sigdesk.relay.models import Event

    engine = create_engine(db_url)
    now = utcnow()
    total = 0
    with engine.begin() as connection:
        for start_at in range(0, count, 5000):
            rows = []
            for i in range(start_at, min(count, start_at + 5000)):
                body, signature = signed(delivery(i, tag))
                rows.append(
                    {
                        "install_id": install_id,
                        "received_at": now,
                        "size": len(body),
                        "signature": signature,
                        "body": body,
                    }
                )
                total += len(body)
            connection.execute(insert(Event.__table__), rows)
        connection.execute(
            text("UPDATE relay_installs SET stored_events = :n, stored_bytes = :b WHERE id = :id"),
            {"n": count, "b": total, "id": install_id},
        )
    engine.dispose()


def bench_drain(tmp: Path, args) -> dict:
    import httpx

    from sigdesk.relay_client.client import RelayClient

    db_url = f"sqlite:///{tmp / 'drain-relay.db'}"
    alone = add_install(db_url, "relay-alone")
    full = add_install(db_url, "desktop")
    preload(db_url, alone.install.id, args.drain_count, "alone")
    preload(db_url, full.install.id, args.drain_count, "drain")
    relay, url = start_relay(tmp, db_url, args.threads)
    results: dict = {}
    desktop = None
    try:
        token = httpx.post(f"{url}/v1/pair", json={"code": alone.pairing_code}, timeout=30).json()["token"]
        began = time.perf_counter()
        pulled = 0
        with RelayClient(url, token) as client:
            while True:
                batch = client.pull(limit=500, wait=0)
                if not batch.events:
                    break
                pulled += len(batch.events)
                client.ack(batch.events[-1].seq)
        results["relay_alone"] = {"events": pulled, "seconds": time.perf_counter() - began}

        data_dir = tmp / "drain-desktop"
        configure_desktop(data_dir, url, full.pairing_code)
        token = relay_token(data_dir)
        began = time.perf_counter()
        desktop, _ = start_desktop(tmp, data_dir)
        started_up = time.perf_counter() - began
        with httpx.Client(trust_env=False, timeout=30) as client:
            while True:
                status = client.get(f"{url}/v1/status", headers={"Authorization": f"Bearer {token}"}).json()
                if status["backlog"] == 0:
                    break
                time.sleep(0.25)
        elapsed = time.perf_counter() - began - started_up
        results["desktop"] = {
            "events": args.drain_count,
            "seconds": elapsed,
            "startup": started_up,
            "processed": processed_count(data_dir),
        }
    finally:
        if desktop is not None:
            stop(desktop)
        stop(relay)
    results["local_baseline"] = local_ingest(tmp, min(args.drain_count, args.baseline_count))
    return results


def processed_count(data_dir: Path) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{data_dir / 'sigdesk.db'}")
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM webhook_deliveries WHERE state = 'processed'")).scalar()
    engine.dispose()
    return count


def local_ingest(tmp: Path, count: int) -> dict:
    """SigDesk's own ingest of the same bodies, in-process and without a relay: the ceiling for the drain."""
    from sigdesk.app import create_app
    from sigdesk.config import Config
    from sigdesk.inbound import services
    from sigdesk.whatsapp.webhook import parse

    config = Config.from_env(data_dir=tmp / "local-baseline", bcrypt_rounds=4)
    app = create_app(config)
    database = app.extensions["sigdesk"].database
    bodies = [signed(delivery(i, "local")) for i in range(count)]
    session = database.sessionmaker()
    began = time.perf_counter()
    for body, signature in bodies:
        parsed = parse(body)
        with services.write_lock(session):
            delivery_id = services.store_delivery(session, body, signature, source="relay")
            session.commit()
            services.apply_stored(session, delivery_id, body, parsed)
    elapsed = time.perf_counter() - began
    session.close()
    database.dispose()
    return {"events": count, "seconds": elapsed}


# --- report ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000, help="deliveries POSTed in the ingest run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="waitress threads (relay and baseline)")
    parser.add_argument("--with-durable", action="store_true", help="also measure `relay serve --durable`")
    parser.add_argument("--latency-count", type=int, default=500)
    parser.add_argument("--latency-rate", type=float, default=20.0, help="deliveries per second in the latency run")
    parser.add_argument("--drain-count", type=int, default=100_000)
    parser.add_argument(
        "--baseline-count", type=int, default=10_000, help="deliveries in the in-process ingest baseline"
    )
    parser.add_argument("--only", choices=["ingest", "latency", "drain"])
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare is not None:
        serve_bare(args.serve_bare, args.threads)
        return

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="sigdesk-bench-relay-") as folder:
        tmp = Path(folder)
        if args.only in (None, "ingest"):
            ingest = bench_ingest(tmp, args)
            for name, result in ingest.items():
                stored = f", stored {result['stored']}" if "stored" in result else ""
                print(
                    f"ingest {name:16s} {args.count} POSTs in {result['elapsed']:.1f} s: {result['rate']:,.0f} POST/s, "
                    f"p50 {result['p50'] * 1000:.1f} ms, p99 {result['p99'] * 1000:.1f} ms, codes {result['codes']}{stored}"
                )
            for name in [key for key in ingest if key != "bare"]:
                print(
                    f"ingest ratio {name} / bare WSGI: {ingest[name]['rate'] / ingest['bare']['rate']:.2f} "
                    f"(target 1,500 POST/s: {'met' if ingest[name]['rate'] >= 1500 else 'NOT met'} here)"
                )
        if args.only in (None, "latency"):
            latency = bench_latency(tmp, args)
            print(
                f"latency POST -> SigDesk commit over {latency['count']} deliveries at {args.latency_rate:g}/s: "
                f"p50 {latency['p50'] * 1000:.0f} ms, p95 {latency['p95'] * 1000:.0f} ms, p99 {latency['p99'] * 1000:.0f} ms "
                f"(the POST itself: p50 {latency['post_p50'] * 1000:.1f} ms)"
            )
        if args.only in (None, "drain"):
            drain = bench_drain(tmp, args)
            alone, desktop, local = drain["relay_alone"], drain["desktop"], drain["local_baseline"]
            desktop_rate = desktop["events"] / desktop["seconds"]
            local_rate = local["events"] / local["seconds"]
            print(
                f"drain relay alone (pull + ack, no ingest): {alone['events']} events in {alone['seconds']:.1f} s: "
                f"{alone['events'] / alone['seconds']:,.0f} events/s"
            )
            print(
                f"drain into SigDesk: {desktop['events']} events in {desktop['seconds']:.1f} s after a "
                f"{desktop['startup']:.1f} s start: {desktop_rate:,.0f} events/s ({desktop['processed']} processed)"
            )
            print(
                f"baseline SigDesk ingest in-process, no relay: {local['events']} in {local['seconds']:.1f} s: "
                f"{local_rate:,.0f} events/s; drain / baseline: {desktop_rate / local_rate:.2f}"
            )
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
