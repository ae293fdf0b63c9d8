"""Export speed and memory on a large message table.

Run from the project root:

    .venv/bin/python tests/perf/bench_export.py                     # 1,000,000 messages
    .venv/bin/python tests/perf/bench_export.py --messages 200000

Builds a SQLite data dir with SigDesk's schema and N text messages (~300 bytes of text each), then
runs `sigdesk export --what messages` once as CSV and once as JSON Lines, each in a child process,
and reports rows per second and the child's peak RSS (target: under 200 MB). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sigdesk.app import create_app
from sigdesk.config import Config

WORDS = [
    "hello",
    "order",
    "delivery",
    "tomorrow",
    "thanks",
    "price",
    "invoice",
    "address",
    "please",
    "ready",
    "pickup",
    "ñandú",
    "👋",
]


def build(data_dir: Path, messages: int) -> None:
    app = create_app(Config(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'sigdesk.db'}", testing=True))
    app.extensions["sigdesk"].database.dispose()
    rng = random.Random(3)
    connection = sqlite3.connect(data_dir / "sigdesk.db")
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    contacts = 5000
    connection.executemany(
        "INSERT INTO contacts (id, wa_id, opted_out_marketing, created_at) VALUES (?, ?, 0, '2026-01-01 00:00:00.000000')",
        [(n, f"4477{n:08d}") for n in range(1, contacts + 1)],
    )
    connection.executemany(
        "INSERT INTO conversations (id, contact_id, status, unread_count, created_at) VALUES (?, ?, 'open', 0, '2026-01-01 00:00:00.000000')",
        [(n, n) for n in range(1, contacts + 1)],
    )
    done = 0
    while done < messages:
        batch = []
        for _ in range(min(20000, messages - done)):
            done += 1
            contact = rng.randint(1, contacts)
            stamp = f"2026-{1 + done % 12:02d}-{1 + done % 28:02d} {done % 24:02d}:{done % 60:02d}:{done % 59:02d}.{done % 999999:06d}"
            batch.append(
                (
                    f"wamid.{done}",
                    contact,
                    contact,
                    "in" if done % 2 else "out",
                    " ".join(rng.choices(WORDS, k=40)),
                    stamp,
                    stamp,
                )
            )
        connection.executemany(
            "INSERT INTO messages (wamid, conversation_id, contact_id, direction, type, text, timestamp, created_at,"
            " forwarded, frequently_forwarded, attempts) VALUES (?, ?, ?, ?, 'text', ?, ?, ?, 0, 0, 0)",
            batch,
        )
        connection.commit()
    connection.close()


def run_export(data_dir: Path, fmt: str, out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sigdesk",
            "--data-dir",
            str(data_dir),
            "export",
            "--format",
            fmt,
            "--what",
            "messages",
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SIGDESK_DATABASE_URL": f"sqlite:///{data_dir / 'sigdesk.db'}"},
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sigdesk-bench-export-"))
    data_dir = work / "data"
    started = time.perf_counter()
    build(data_dir, args.messages)
    db_mib = (data_dir / "sigdesk.db").stat().st_size / 1024 / 1024
    print(f"built {args.messages} messages ({db_mib:.0f} MiB SQLite) in {time.perf_counter() - started:.0f} s")
    result = {"messages": args.messages, "database_mib": round(db_mib)}
    for fmt in ("csv", "json"):
        out = work / f"messages.{fmt}"
        seconds, peak = run_export(data_dir, fmt, out)
        lines = sum(1 for _ in open(out, "rb"))
        result[f"{fmt}_seconds"] = round(seconds, 1)
        result[f"{fmt}_rows_per_s"] = round(args.messages / seconds)
        result[f"{fmt}_peak_rss_mib"] = round(peak)
        result[f"{fmt}_file_mib"] = round(out.stat().st_size / 1024 / 1024)
        print(
            f"{fmt}: {seconds:.1f} s, {args.messages / seconds:,.0f} rows/s, peak RSS {peak:.0f} MiB "
            f"(child process, whole CLI), {lines} lines"
        )
        out.unlink()
    print(json.dumps(result))
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
