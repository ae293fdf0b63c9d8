"""Contact import speed and memory: a 100,000-row CSV and a 20,000-row .xlsx, imported as the worker does.

Run from the project root:

    .venv/bin/python tests/perf/bench_import.py                      # SQLite, 100,000 CSV rows, 20,000 xlsx rows
    .venv/bin/python tests/perf/bench_import.py --rows 20000 --xlsx-rows 5000
    .venv/bin/python tests/perf/bench_import.py --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_import

The files hold names, phones in several formats, emails, cities, tags and notes; 10% of the rows match a
contact already there (updates), 2% have an invalid phone (refused). Each import runs in a child process
(start_import, then run_step batch after batch, exactly as the worker's task), which reports its own peak
RSS (getrusage ru_maxrss). The baseline, in the same run, is a child that only reads the file's rows
(reading.iter_rows): the ratio says what the import costs beyond parsing. Targets: CSV >= 5,000 rows/s,
xlsx >= 2,000 rows/s, peak RSS < 300 MB. Rows per CPU second are shown too: on a busy machine the
wall-clock rate says more about the neighbours than about the import. Each import is then undone the way
the worker undoes it (undo_import, then undo_step batch after batch): target, a 100,000-row import undone
in well under a minute on SQLite. The last line is JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CITIES = ["Berlin", "München", "Köln", "São Paulo", "Zürich", "Málaga", "Lyon", "Porto"]
TAGS = ["VIP", "Wholesale", "Newsletter", ""]
EXISTING = 10  # percent of rows that update a contact already there
INVALID = 2  # percent of rows with a phone that is no number


def phone(n: int, rng: random.Random) -> str:
    digits = f"{n:08d}"
    style = rng.randrange(3)
    if style == 0:
        return f"+49 151 {digits}"
    if style == 1:
        return f"0151 {digits[:4]} {digits[4:]}"  # read in the default country, DE
    return f"+49151{digits}"


def rows(count: int, seed: int = 7):
    rng = random.Random(seed)
    yield ["Name", "Phone", "E-mail", "City", "Tags", "Notes"]
    for n in range(1, count + 1):
        number = n if rng.randrange(100) >= EXISTING else rng.randrange(1, max(count // 10, 2))
        shown = phone(number + 10_000_000, rng) if rng.randrange(100) >= INVALID else "12345"
        yield [
            f"Person {n} Müller",
            shown,
            f"person{n}@example.com" if n % 3 else "",
            rng.choice(CITIES),
            rng.choice(TAGS),
            "Met at the fair; wants a quote" if n % 7 == 0 else "",
        ]


def write_csv(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows(count))


def write_xlsx(path: Path, count: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in rows(count, seed=11):
        sheet.append(row)
    book.save(path)


def prepare(data_dir: Path, url: str, existing: int) -> None:
    """SigDesk's schema, the tags, and `existing` contacts the files' rows partly match."""
    from sqlalchemy import insert

    from sigdesk.actor import Actor
    from sigdesk.app import create_app
    from sigdesk.config import Config
    from sigdesk.db import utcnow
    from sigdesk.lifecycle.commands import create_tag
    from sigdesk.models import Contact

    app = create_app(Config(data_dir=data_dir, database_url=url, testing=True))
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        for name in TAGS[:-1]:
            create_tag(session, Actor.system("cli"), name)
        now = utcnow()
        session.execute(
            insert(Contact.__table__),
            [
                {
                    "wa_id": f"49151{n + 10_000_000:08d}",
                    "display_name": f"Old {n}",
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(1, existing)
            ],
        )
    database.dispose()


def child(kind: str, path: str, data_dir: str, url: str) -> None:
    """One measured run; prints JSON with its figures and its own peak RSS."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    from sigdesk.actor import Actor
    from sigdesk.db import Database
    from sigdesk.imports import commands, services
    from sigdesk.imports.reading import inspect, iter_rows

    source = Path(path)
    started, cpu = time.perf_counter(), time.process_time()
    figures: dict = {}
    if kind == "parse":
        info = inspect(source, source.name)
        figures["rows"] = sum(1 for _row in iter_rows(source, info))
    else:
        database = Database(url)
        actor = Actor.system("worker")
        with open(source, "rb") as handle:
            stored = services.save_upload(Path(data_dir), handle, source.name, limit=1 << 40)
        with database.session() as session:
            job = commands.start_import(session, actor, Path(data_dir), stored, source.name, country="DE", suggest=True)
            job_id = job.id
        with database.session() as session:
            while commands.run_step(session, actor, job_id, Path(data_dir)):
                if services.get_job(session, job_id).state != "running":
                    break
            job = services.get_job(session, job_id)
            figures.update(
                rows=job.processed, created=job.created, updated=job.updated, rejected=job.rejected, state=job.state
            )
        figures["seconds"] = time.perf_counter() - started
        figures["cpu_seconds"] = time.process_time() - cpu
        undo_started = time.perf_counter()
        with database.session() as session:
            commands.undo_import(session, actor, job_id)
        with database.session() as session:
            while commands.undo_step(session, actor, job_id):
                pass
            job = services.get_job(session, job_id)
            figures.update(
                undo_seconds=time.perf_counter() - undo_started,
                undo_state=job.state,
                undo_contacts=job.undo_processed,
                deleted=job.deleted,
                restored=job.restored,
            )
        database.dispose()
    figures.setdefault("seconds", time.perf_counter() - started)
    figures.setdefault("cpu_seconds", time.process_time() - cpu)
    figures["rows_per_second"] = figures["rows"] / figures["seconds"]
    figures["rows_per_cpu_second"] = figures["rows"] / figures["cpu_seconds"]
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def measure(kind: str, path: Path, data_dir: Path, url: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), str(data_dir), url],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--xlsx-rows", type=int, default=20_000)
    parser.add_argument("--db", help="A MariaDB URL (its database is recreated); default SQLite in a temp dir")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        data_dir = base / "data"
        data_dir.mkdir()
        url = options.db or f"sqlite:///{data_dir / 'sigdesk.db'}"
        if options.db:
            from tests.mysql import recreate_database

            recreate_database(url)
        csv_path, xlsx_path = base / "contacts.csv", base / "contacts.xlsx"
        write_csv(csv_path, options.rows)
        write_xlsx(xlsx_path, options.xlsx_rows)
        prepare(data_dir, url, options.rows // 10)
        report: dict = {"backend": url.split(":", 1)[0], "csv_mb": round(os.path.getsize(csv_path) / 1e6, 1)}
        for kind, path in (("csv", csv_path), ("xlsx", xlsx_path)):
            parse = measure("parse", path, data_dir, url)
            run = measure("import", path, data_dir, url)
            report[kind] = {
                "rows": run["rows"],
                "created": run["created"],
                "updated": run["updated"],
                "rejected": run["rejected"],
                "import_rows_per_second": round(run["rows_per_second"]),
                "import_rows_per_cpu_second": round(run["rows_per_cpu_second"]),
                "parse_rows_per_second": round(parse["rows_per_second"]),
                "import_to_parse_ratio": round(run["rows_per_second"] / parse["rows_per_second"], 3),
                "peak_rss_mb": round(run["peak_rss_mb"], 1),
                "parse_peak_rss_mb": round(parse["peak_rss_mb"], 1),
                "undo_seconds": round(run["undo_seconds"], 1),
                "undo_state": run["undo_state"],
            }
            print(
                f"{kind}: {run['rows']} rows in {run['seconds']:.1f} s = {run['rows_per_second']:,.0f} rows/s "
                f"({run['rows_per_cpu_second']:,.0f} rows per CPU second; parsing alone {parse['rows_per_second']:,.0f} "
                f"rows/s), peak RSS {run['peak_rss_mb']:.0f} MB; "
                f"{run['created']} created, {run['updated']} updated, {run['rejected']} refused; "
                f"undone ({run['undo_state']}) in {run['undo_seconds']:.1f} s: {run['deleted']} deleted, "
                f"{run['restored']} put back"
            )
        print(json.dumps(report))


if __name__ == "__main__":
    main()
