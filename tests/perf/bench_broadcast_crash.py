"""Broadcast crash benchmark (issue 16): kill -9 the server at a random moment of a broadcast, restart it,
and check that nobody got the broadcast twice and nobody was forgotten.

Run from the project root:

    .venv/bin/python tests/perf/bench_broadcast_crash.py                        # 5 runs, SQLite
    .venv/bin/python tests/perf/bench_broadcast_crash.py --runs 5 --count 2000 --rate 200 \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench                  # MariaDB (re-created per run)

Each run builds a new database as tests/perf/bench_broadcast.py does (opted-in contacts, an approved
marketing template, a segment, the connection to the fake Graph API in its own process), starts a real
`sigdesk serve`, creates and starts the broadcast through the API, sends SIGKILL to the server at a
random moment while it sends (--seed makes the moments repeatable), starts it again on the same port and
data dir, and waits until GET /api/v1/broadcasts/{id} says completed. Then it compares what the fake
received with each recipient's final state (read from the database):

- duplicates: the same `to` twice at the fake (must be 0);
- unknown: recipients whose call was in flight at the kill (never resent); how many of those calls did
  reach the fake, and how many did not;
- lost: recipients that neither reached the fake nor ended unknown/failed/skipped (must be 0), and
  recipients marked sent that the fake never saw (must be 0).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.perf.bench_broadcast import (  # noqa: E402
    FakeGraphProcess,
    Server,
    api_client,
    create_broadcast,
    duplicates,
    get_broadcast,
    prepare,
    start_broadcast,
    wait_until_final,
)

COLUMNS = (
    ("run", 3),
    ("kill at", 8),
    ("sent@kill", 9),
    ("restart", 7),
    ("total", 7),
    ("status", 9),
    ("fake", 6),
    ("dupes", 5),
    ("unknown", 7),
    ("unk@fake", 8),
    ("sent", 6),
    ("failed", 6),
    ("lost", 4),
    ("phantom", 7),
)


def recipient_states(db_url: str, broadcast_id: int) -> dict[str, str]:
    """wa_id -> state of every recipient of the broadcast, straight from the table."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT wa_id, state FROM broadcast_recipients WHERE broadcast_id = :id"), {"id": broadcast_id}
            ).all()
    finally:
        engine.dispose()
    return {wa_id: state for wa_id, state in rows}


def one_run(args: argparse.Namespace, number: int, work: Path, fake: FakeGraphProcess, rng: random.Random) -> dict:
    fake.reset()
    data_dir = work / f"run-{number}"
    logs = work / "logs"
    seeded = prepare(data_dir, args.db, args.count, fake.url, seed_value=number)
    server = Server(data_dir, seeded.db_url, logs / f"server-{number}.log", threads=args.threads).start()
    try:
        api = api_client(server.url, seeded.owner_token)
        broadcast_id = create_broadcast(api, seeded, args.rate, "segment", f"Crash run {number}")
        expected = args.count / args.rate
        kill_after = rng.uniform(args.earliest, max(args.earliest, args.latest * expected))
        start_called = time.time()
        start_broadcast(api, broadcast_id)
        time.sleep(max(0.0, start_called + kill_after - time.time()))
        server.kill()
        killed_at = time.time() - start_called
        sent_at_kill = len(fake.sent())
        began = time.monotonic()
        server.start()
        restart = time.monotonic() - began
        final, seen = wait_until_final(api, broadcast_id, timeout=3 * expected + 180, say=lambda _line: None)
        total = seen - start_called
        final = get_broadcast(api, broadcast_id)
        api.close()
    finally:
        server.stop()
    sent = fake.sent()
    received = Counter(to.lstrip("+") for to, _at in sent)
    states = recipient_states(seeded.db_url, broadcast_id)
    unknown = {wa_id for wa_id, state in states.items() if state == "unknown"}
    settled = {"failed", "skipped", "unknown"}
    lost = [wa_id for wa_id, state in states.items() if wa_id not in received and state not in settled]
    phantom = [wa_id for wa_id, state in states.items() if state == "sent" and wa_id not in received]
    counts = final.get("counts") or {}
    return {
        "run": number,
        "kill at": f"{killed_at:.1f}s",
        "sent@kill": sent_at_kill,
        "restart": f"{restart:.1f}s",
        "total": f"{total:.0f}s",
        "status": final.get("status"),
        "fake": len(sent),
        "dupes": duplicates(sent),
        "unknown": len(unknown),
        "unk@fake": len(unknown & set(received)),
        "sent": counts.get("sent", 0),
        "failed": counts.get("failed", 0),
        "lost": len(lost),
        "phantom": len(phantom),
        "others": {k: v for k, v in counts.items() if v and k not in ("sent", "failed", "unknown")},
    }


def row(values: dict) -> str:
    return "  ".join(f"{values[name]!s:>{width}}" for name, width in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=2000, help="recipients per run (default 2,000)")
    parser.add_argument("--rate", type=int, default=200, help="messages per second (default 200)")
    parser.add_argument("--db", help="database URL (default: SQLite per run); a MariaDB database is re-created per run")
    parser.add_argument("--data-dir", type=Path, help="work folder (default: a temp dir, removed afterwards)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads of sigdesk serve")
    parser.add_argument("--seed", type=int, default=None, help="makes the kill moments repeatable")
    parser.add_argument("--earliest", type=float, default=0.3, help="kill no sooner than this many s after start")
    parser.add_argument(
        "--latest", type=float, default=0.9, help="kill no later than this share of count / rate after start"
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    print(
        f"{args.runs} runs of {args.count:,} recipients at {args.rate}/s on {args.db or 'SQLite'}, "
        f"SIGKILL between {args.earliest} s and {args.latest:.0%} of {args.count / args.rate:.1f} s (--seed {seed})"
    )
    work = args.data_dir or Path(tempfile.mkdtemp(prefix="sigdesk-bench-broadcast-crash-"))
    (work / "logs").mkdir(parents=True, exist_ok=True)
    fake = FakeGraphProcess(work / "logs" / "fake-graph.log")
    results = []
    try:
        print(row({name: name for name, _width in COLUMNS}))
        for number in range(1, args.runs + 1):
            result = one_run(args, number, work, fake, rng)
            results.append(result)
            extra = f"  {result['others']}" if result["others"] else ""
            print(row(result) + extra, flush=True)
    finally:
        fake.stop()
        if args.data_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    dupes = sum(r["dupes"] for r in results)
    lost = sum(r["lost"] + r["phantom"] for r in results)
    unfinished = sum(r["status"] != "completed" for r in results)
    print(
        f"duplicates {dupes} (target 0), unknown {sum(r['unknown'] for r in results)} in {len(results)} runs "
        f"({sum(r['unk@fake'] for r in results)} of them reached the fake), lost or phantom {lost} (target 0), "
        f"not completed {unfinished}"
    )
    ok = dupes == 0 and lost == 0 and unfinished == 0
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
