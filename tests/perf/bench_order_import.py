"""Order history import speed and memory: a 300,000-line CSV imported as the worker does (target >= 5,000 lines/s).

Run from the project root:

    .venv/bin/python tests/perf/bench_order_import.py                     # SQLite, 300,000 lines
    .venv/bin/python tests/perf/bench_order_import.py --lines 50000
    .venv/bin/python tests/perf/bench_order_import.py --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_orders

The file holds about 100,000 orders (1 to 5 lines each, lines of one order_ref together) for 20,000 customers
over two years, phones in several formats (a tenth of them new to SigDesk, created by the import), 200 SKUs,
some lines without SKU (totals only), and 1% bad lines (negative quantities, unknown SKUs, dates in the future)
that are refused. Each run is a child process that reports its own peak RSS (getrusage ru_maxrss):

- import: start_kind_import, then run_step batch after batch, exactly as the worker's task; then undone.
- baseline, in the same run: a child that reads the same file (reading.iter_rows) and writes every row's
  cells with a plain executemany per 1,000 rows into a scratch table, committing each batch: the floor of
  reading and writing those rows on this database. The ratio says what the import costs beyond that.

The last line is JSON.
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
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CUSTOMERS = 20_000
SKUS = 200
NEW_CUSTOMERS = 10  # percent of customers not yet in SigDesk
BAD = 1  # percent of lines refused


def phone(n: int, rng: random.Random) -> str:
    digits = f"{n + 10_000_000:08d}"
    style = rng.randrange(3)
    if style == 0:
        return f"+49 151 {digits}"
    if style == 1:
        return f"0151 {digits[:4]} {digits[4:]}"
    return f"+49151{digits}"


def lines(count: int, seed: int = 5):
    rng = random.Random(seed)
    yield ["phone", "ordered_at", "sku", "quantity", "unit_price", "currency", "order_ref"]
    start = date.today() - timedelta(days=730)
    written, ref = 0, 0
    while written < count:
        ref += 1
        customer = rng.randrange(1, CUSTOMERS + 1)
        who = phone(customer, rng)
        day = start + timedelta(days=rng.randrange(728))
        when = (
            day.isoformat()
            if rng.randrange(2)
            else f"{day.isoformat()} {rng.randrange(8, 20):02d}:{rng.randrange(60):02d}"
        )
        for _ in range(min(rng.randrange(1, 6), count - written)):
            sku = f"SKU-{rng.randrange(SKUS):04d}" if rng.randrange(10) else ""
            quantity = str(rng.randrange(1, 5))
            price = f"{rng.randrange(100, 5000) / 100:.2f}" if (not sku or rng.randrange(3) == 0) else ""
            if rng.randrange(100) < BAD:
                quantity, sku = rng.choice([("-1", sku), (quantity, "SKU-UNKNOWN")])
                when = rng.choice([when, "2999-01-01"])
            yield [who, when, sku, quantity, price, "EUR", f"R{ref}"]
            written += 1


def write_csv(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(lines(count))


def prepare(data_dir: Path, url: str) -> None:
    """SigDesk's schema, the catalogue, and the customers already there."""
    from sqlalchemy import insert

    from sigdesk.app import create_app
    from sigdesk.config import Config
    from sigdesk.db import utcnow
    from sigdesk.models import Contact, Product

    app = create_app(Config(data_dir=data_dir, database_url=url, testing=True))
    database = app.extensions["sigdesk"].database
    now = utcnow()
    with database.session() as session:
        session.execute(
            insert(Product.__table__),
            [
                {
                    "sku": f"SKU-{n:04d}",
                    "name": f"Product {n}",
                    "price_minor": 100 + n * 7,
                    "currency": "EUR",
                    "active": True,
                    "placeholder": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(SKUS)
            ],
        )
        session.execute(
            insert(Contact.__table__),
            [
                {"wa_id": f"49151{n + 10_000_000:08d}", "created_at": now, "updated_at": now}
                for n in range(1, CUSTOMERS + 1)
                if n % 100 >= NEW_CUSTOMERS
            ],
        )
        session.commit()
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
    database = Database(url)
    started, cpu = time.perf_counter(), time.process_time()
    figures: dict = {}
    if kind == "raw":
        from sqlalchemy import Column, Integer, MetaData, String, Table, insert

        table = Table(
            "bench_raw_lines",
            MetaData(),
            Column("id", Integer, primary_key=True),
            *[Column(name, String(100)) for name in ("c0", "c1", "c2", "c3", "c4", "c5", "c6")],
            mysql_engine="InnoDB",
        )
        table.drop(database.engine, checkfirst=True)
        table.create(database.engine)
        info = inspect(source, source.name)
        count = 0
        batch: list[dict] = []
        with database.engine.connect() as connection:
            for row in iter_rows(source, info):
                batch.append({f"c{i}": row.cells[i] if i < len(row.cells) else "" for i in range(7)})
                if len(batch) == 1000:
                    connection.execute(insert(table), batch)
                    connection.commit()
                    count += len(batch)
                    batch = []
            if batch:
                connection.execute(insert(table), batch)
                connection.commit()
                count += len(batch)
        table.drop(database.engine)
        figures["rows"] = count
    else:
        actor = Actor.system("worker")
        with open(source, "rb") as handle:
            stored = services.save_upload(Path(data_dir), handle, source.name, limit=1 << 40)
        with database.session() as session:
            job = commands.start_kind_import(
                session,
                actor,
                Path(data_dir),
                stored,
                source.name,
                "orders",
                options={"country": "DE", "currency": "EUR"},
                suggest=True,
            )
            job_id = job.id
        with database.session() as session:
            while commands.run_step(session, actor, job_id, Path(data_dir)):
                if services.get_job(session, job_id).state != "running":
                    break
            job = services.get_job(session, job_id)
            figures.update(
                rows=job.processed,
                orders=job.created,
                lines=job.lines,
                contacts_created=job.contacts_created,
                rejected=job.rejected,
                state=job.state,
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
            figures.update(undo_seconds=time.perf_counter() - undo_started, undo_state=job.state, removed=job.removed)
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
    parser.add_argument("--lines", type=int, default=300_000)
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
        path = base / "orders.csv"
        write_csv(path, options.lines)
        prepare(data_dir, url)
        raw = measure("raw", path, data_dir, url)
        run = measure("import", path, data_dir, url)
        report = {
            "backend": url.split(":", 1)[0],
            "csv_mb": round(os.path.getsize(path) / 1e6, 1),
            "lines": run["rows"],
            "orders": run["orders"],
            "lines_written": run["lines"],
            "contacts_created": run["contacts_created"],
            "rejected": run["rejected"],
            "import_lines_per_second": round(run["rows_per_second"]),
            "import_lines_per_cpu_second": round(run["rows_per_cpu_second"]),
            "raw_executemany_rows_per_second": round(raw["rows_per_second"]),
            "import_to_raw_ratio": round(run["rows_per_second"] / raw["rows_per_second"], 3),
            "peak_rss_mb": round(run["peak_rss_mb"], 1),
            "raw_peak_rss_mb": round(raw["peak_rss_mb"], 1),
            "undo_seconds": round(run["undo_seconds"], 1),
            "undo_state": run["undo_state"],
            "target_met": run["rows_per_second"] >= 5000,
        }
        print(
            f"{run['rows']} lines in {run['seconds']:.1f} s = {run['rows_per_second']:,.0f} lines/s "
            f"({run['rows_per_cpu_second']:,.0f} per CPU second; raw executemany of the same rows "
            f"{raw['rows_per_second']:,.0f} rows/s, ratio {report['import_to_raw_ratio']}), peak RSS "
            f"{run['peak_rss_mb']:.0f} MB (raw {raw['peak_rss_mb']:.0f} MB); {run['orders']} orders, {run['lines']} lines, "
            f"{run['contacts_created']} contacts created, {run['rejected']} refused; undone ({run['undo_state']}) "
            f"in {run['undo_seconds']:.1f} s"
        )
        print(json.dumps(report))


if __name__ == "__main__":
    main()
