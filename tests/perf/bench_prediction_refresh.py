"""A full reorder-prediction refresh under sales load: `sigdesk predictions refresh` in its own process on a
database of 50,000 contacts and 300,000 orders (tests/perf/seed_sales.py), timed, with its peak RSS.

    .venv/bin/python tests/perf/bench_prediction_refresh.py --data-dir /tmp/sigdesk-refresh                # SQLite
    .venv/bin/python tests/perf/bench_prediction_refresh.py --data-dir /tmp/sigdesk-refresh-maria \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_refresh                                      # MariaDB

Seeds unless --reuse (messages 0 by default: a refresh reads no messages). Runs the refresh twice: the first
of the day also measures the accuracy (two backtests, after the forecasts are current), the second carries it
over. Prints the seconds until the forecasts were current (the log's "refreshed N customers in X s"), the
command's wall time and its peak RSS, then PASS or FAIL against the targets: < 30 s and < 500 MB.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 30.0
TARGET_MB = 500


def refresh(data_dir: Path, url: str) -> tuple[float, float, float, str]:
    """(seconds until current, wall seconds, peak RSS in MB, last line) of one `sigdesk predictions refresh`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    began = time.monotonic()
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "sigdesk"), "--data-dir", str(data_dir), "--database-url", url]
        + ["predictions", "refresh"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"the refresh failed:\n{done.stdout}\n{done.stderr}")
    found = re.search(r"refreshed \d+ customers in ([0-9.]+) s", done.stderr + done.stdout)
    current = float(found.group(1)) if found else wall
    return current, wall, max(peak, before) / 1024, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--db", default=None, help="a MariaDB URL (re-created); default SQLite in the data dir")
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="the database was seeded before")
    args = parser.parse_args()

    from tests.perf.seed_sales import seed

    url = args.db or f"sqlite:///{args.data_dir / 'sigdesk.db'}"
    if not args.reuse:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        seeded = seed(args.db, args.contacts, args.orders, args.messages, data_dir=args.data_dir, verbose=False)
        url = seeded.url.render_as_string(hide_password=False)
        print(f"seeded in {time.monotonic() - began:.0f} s")
    failed = False
    for label in ("first of the day (with accuracy)", "again (accuracy carried over)"):
        current, wall, peak, last = refresh(args.data_dir, url)
        ok = current < TARGET_SECONDS and peak < TARGET_MB
        failed |= not ok
        print(f"{label}: current after {current:.1f} s, command {wall:.1f} s, peak RSS {peak:.0f} MB; {last}")
    print("FAIL" if failed else "PASS", f"(targets: < {TARGET_SECONDS:.0f} s, < {TARGET_MB} MB)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
