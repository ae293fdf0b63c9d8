"""Bad-signature benchmark: what a flood of forged webhooks costs, beside good ones and health checks.

Run from the project root:

    .venv/bin/python tests/perf/bench_bad_signatures.py                   # SQLite in a temp dir
    .venv/bin/python tests/perf/bench_bad_signatures.py --count 2000      # quicker
    .venv/bin/python tests/perf/bench_bad_signatures.py --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench

One SigDesk server (a subprocess, with its worker running, as `sigdesk serve` runs it) answers, in
turn: GET /healthz, correctly signed deliveries (each stored and processed), and deliveries whose
signature is wrong (each refused with 403). The clients are separate processes, so they do not share
the server's GIL. Printed: the rate of each, and the bad-signature rate as a ratio of the other two
from the same run, so the figures compare across machines. A refusal should cost no database write
and no log line of its own: the script also prints how many warning lines the server logged and
checks that the stored refusal counter, flushed by the worker, equals what was sent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sigdesk.whatsapp.webhook import signature_header  # noqa: E402
from tests.mysql import recreate_database  # noqa: E402

from tests.perf.bench_ingest import SECRET  # noqa: E402  (the secret its server is given)

FIXTURE = ROOT / "tests" / "fixtures" / "webhooks" / "message_text.json"
FLUSH_WAIT_SECONDS = 8.0  # the worker adds the in-memory count to the database every few seconds


# --- server side (subprocess) ------------------------------------------------------------------


def serve(data_dir: str, db_url: str | None, threads: int) -> None:
    """Run SigDesk until the parent closes our stdin, after printing the port it listens on (as bench_ingest)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from tests.perf.bench_ingest import serve_sigdesk

    serve_sigdesk(data_dir, db_url, threads)


def start_server(data_dir: str, db_url: str | None, threads: int, log_file: Path) -> tuple[subprocess.Popen, int]:
    args = [sys.executable, __file__, "--serve", "--data-dir", data_dir, "--threads", str(threads)]
    if db_url:
        args += ["--db", db_url]
    with log_file.open("wb") as log:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        raise SystemExit(f"SigDesk did not start:\n{log_file.read_text(errors='replace')[-3000:]}")
    return proc, int(port)


def stop_server(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- requests ----------------------------------------------------------------------------------


def bodies(kind: str, count: int, offset: int) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(method, path, body, headers) for each request of one kind."""
    if kind == "health":
        return [("GET", "/healthz", b"", {})] * count
    template = json.loads(FIXTURE.read_bytes())
    out = []
    for serial in range(offset, offset + count):
        template["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.bench.bad.{kind}.{serial}"
        raw = json.dumps(template).encode()
        signature = signature_header(SECRET, raw) if kind == "good" else "sha256=" + "0" * 64
        out.append(
            ("POST", "/webhooks/whatsapp", raw, {"Content-Type": "application/json", "X-Hub-Signature-256": signature})
        )
    return out


def client(port: int, requests: list, start_at: float, results) -> None:
    """One client process: one keep-alive connection, its share of the requests, as fast as answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    codes: dict[int, int] = {}
    while time.time() < start_at:
        time.sleep(0.001)
    started = time.perf_counter()
    for method, path, body, headers in requests:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read()
        codes[response.status] = codes.get(response.status, 0) + 1
    results.put((time.perf_counter() - started, codes))
    connection.close()


def blast(port: int, requests: list, processes: int) -> tuple[float, dict[int, int]]:
    """Wall time from the common start to the last answer, and the status codes."""
    results = multiprocessing.Queue()
    start_at = time.time() + 0.5
    workers = [
        multiprocessing.Process(target=client, args=(port, requests[n::processes], start_at, results))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    finished = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    codes: dict[int, int] = {}
    for _elapsed, part in finished:
        for code, n in part.items():
            codes[code] = codes.get(code, 0) + n
    return max(elapsed for elapsed, _codes in finished), codes


def stored_refusals(db_url: str) -> int:
    from sigdesk.db import Database
    from sigdesk.inbound.services import rejected_count

    database = Database(db_url)
    try:
        with database.session(write=False) as session:
            return rejected_count(session)
    finally:
        database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10000, help="requests of each kind")
    parser.add_argument("--processes", type=int, default=8, help="client processes (one connection each)")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--db", help="database URL (default: SQLite in a temp dir); a MySQL database is recreated")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.data_dir, args.db, args.threads)
        return

    with tempfile.TemporaryDirectory(prefix="sigdesk-bench-") as tmp:
        db_url = args.db or f"sqlite:///{Path(tmp) / 'sigdesk.db'}"
        if db_url.startswith("mysql"):
            recreate_database(db_url)
        log_file = Path(tmp) / "server.log"
        proc, port = start_server(tmp, db_url, args.threads, log_file)
        rates: dict[str, float] = {}
        expected = {"health": 200, "good": 200, "bad": 403}
        try:
            blast(port, bodies("bad", 200, 0) + bodies("health", 200, 0), args.processes)  # warm-up
            time.sleep(FLUSH_WAIT_SECONDS)
            warmed = stored_refusals(db_url)
            for kind in ("health", "good", "bad"):
                elapsed, codes = blast(port, bodies(kind, args.count, 1000), args.processes)
                if codes != {expected[kind]: args.count}:
                    raise SystemExit(f"{kind}: unexpected answers {codes}")
                rates[kind] = args.count / elapsed
                print(f"{kind:7s} {args.count} requests in {elapsed:.2f} s: {rates[kind]:,.0f} req/s")
            time.sleep(FLUSH_WAIT_SECONDS)
            counted = stored_refusals(db_url) - warmed
        finally:
            stop_server(proc)
        warnings = [line for line in log_file.read_text(errors="replace").splitlines() if "refused" in line]
        backend = "MariaDB" if db_url.startswith("mysql") else "SQLite"
        print(
            f"{backend}: bad-signature webhooks/s {rates['bad']:,.0f}; ratio to good-signature "
            f"{rates['bad'] / rates['good']:.2f}, to health checks {rates['bad'] / rates['health']:.2f}"
        )
        print(f"server warning lines about refusals: {len(warnings)} for {args.count + 200} refused")
        print(f"refusals counted in the database: {counted} (sent {args.count})")
        if counted != args.count:
            sys.exit(1)


if __name__ == "__main__":
    main()
