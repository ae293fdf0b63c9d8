"""The contacts list under CRM load: the first page with each single filter, and a three-condition segment's
first page and live count, through the real Flask handlers (GET /api/v1/contacts, /contacts/count,
/segments/{id}/contacts and /count, in-process test client with an API token).

    .venv/bin/python tests/perf/bench_contacts.py --data-dir /tmp/sigdesk-contacts                     # SQLite
    .venv/bin/python tests/perf/bench_contacts.py --data-dir /tmp/sigdesk-contacts-maria \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_contacts                               # MariaDB

Seeds with tests/perf/seed_contacts.py (100,000 contacts, 10 custom fields each, 20 tags, 1,000,000
messages; --messages lowers that) unless --reuse names a database seeded before. Prints p50 and p95 of
each request in ms and its p95 as a ratio to the baseline, the unfiltered first page timed between the
case's own requests (so a loaded machine weighs on both), then one PASS or FAIL line per target. Targets:
a single filter's first page p95 < 50 ms; the segment's first page and count p95 < 150 ms. --sqlite-cache-kib sets SQLite's
page cache per connection (sigdesk.db.SQLITE_CACHE_KIB) to compare sizes; 2048 is SQLite's own default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SINGLE_TARGET_MS = 50
SEGMENT_TARGET_MS = 150
SEGMENT = {
    "match": "all",
    "conditions": [
        {"field": "tag", "op": "has", "value": "Tag 02"},
        {"field": "field:plan", "op": "is", "value": "pro"},
        {"field": "consent", "op": "is", "value": "opted_in"},
    ],
}


def _filter(*conditions: dict) -> str:
    return "filter=" + quote(json.dumps({"conditions": list(conditions)}))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def query_only(database, path: str) -> None:
    """The request's filter, search, sort and page (or count) as the services run them, without the rest."""
    from urllib.parse import parse_qs, urlsplit

    from sigdesk.segments import services

    parts = urlsplit(path)
    given = {key: values[0] for key, values in parse_qs(parts.query).items()}
    with database.session() as session:
        if parts.path.startswith("/segments/"):
            definitions = services.definition_of(session, int(parts.path.split("/")[2]))
        else:
            definitions = services.filters_of(
                session,
                given.get("tag", ""),
                given.get("stage", ""),
                given.get("consent", ""),
                None,
                given.get("filter"),
            )
        if parts.path.endswith("/count"):
            services.count_contacts(session, definitions, given.get("q", ""))
        else:
            services.page_rows(session, definitions, given.get("q", ""), given.get("sort"), None, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--db", help="database URL (default: SQLite in the data dir)")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per case")
    parser.add_argument("--reuse", action="store_true", help="use a database seeded by an earlier run")
    parser.add_argument("--sqlite-cache-kib", type=int, help="SQLite page cache per connection (KiB)")
    args = parser.parse_args()

    from sqlalchemy import select

    from sigdesk.app import create_app
    from sigdesk.auth import services as accounts
    from sigdesk.config import Config
    from sigdesk.models import User
    from tests.perf.seed_contacts import seed_contacts

    if not args.reuse:
        seed_contacts(args.data_dir, args.db, args.contacts, args.messages)
    if args.sqlite_cache_kib:
        import sigdesk.db

        sigdesk.db.SQLITE_CACHE_KIB = args.sqlite_cache_kib
    app = create_app(Config.from_env(data_dir=args.data_dir, database_url=args.db, bcrypt_rounds=4))
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        owner = session.scalar(select(User).where(User.email == "owner@bench.example"))
        agent = session.scalar(select(User).where(User.email == "agent1@bench.example"))
        token = accounts.create_api_token(session, owner, "bench")
        session.commit()
        agent_id = agent.id
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def get(path: str) -> dict:
        response = client.get(f"/api/v1{path}", headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        return response.json

    made = client.post(
        "/api/v1/segments", headers=headers, json={"name": f"Bench {time.time()}", "definition": SEGMENT}
    )
    segment_id = made.json["id"]
    cases = [
        ("unfiltered first page (baseline)", "/contacts", None),
        ("tag=Tag 05", "/contacts?tag=Tag%2005", SINGLE_TARGET_MS),
        ("tag=Tag 19 (rare)", "/contacts?tag=Tag%2019", SINGLE_TARGET_MS),
        ("stage=Customer", "/contacts?stage=Customer", SINGLE_TARGET_MS),
        ("consent=opted_out", "/contacts?consent=opted_out", SINGLE_TARGET_MS),
        (
            "custom field plan is enterprise",
            "/contacts?" + _filter({"field": "field:plan", "op": "is", "value": "enterprise"}),
            SINGLE_TARGET_MS,
        ),
        (
            "custom field budget > 9000",
            "/contacts?" + _filter({"field": "field:budget", "op": "gt", "value": 9000}),
            SINGLE_TARGET_MS,
        ),
        (
            "last contact within 7 days",
            "/contacts?" + _filter({"field": "last_contact_at", "op": "within_last_days", "value": 7}),
            SINGLE_TARGET_MS,
        ),
        (
            "owner is agent1",
            "/contacts?" + _filter({"field": "owner", "op": "is", "value": agent_id}),
            SINGLE_TARGET_MS,
        ),
        (
            "label has Complaint",
            "/contacts?" + _filter({"field": "label", "op": "has", "value": "Complaint"}),
            SINGLE_TARGET_MS,
        ),
        ("search q=Müller", "/contacts?q=M%C3%BCller", SINGLE_TARGET_MS),
        ("search q=phone digits", "/contacts?q=151000", SINGLE_TARGET_MS),
        ("segment (3 conditions) first page", f"/segments/{segment_id}/contacts", SEGMENT_TARGET_MS),
        ("segment (3 conditions) count", f"/segments/{segment_id}/count", SEGMENT_TARGET_MS),
        ("unfiltered count", "/contacts/count", None),
        ("sort=name first page", "/contacts?sort=name", None),
    ]
    with database.session() as session:
        from sqlalchemy import func

        from sigdesk.models import Contact, ContactFieldValue, Message

        total = session.scalar(select(func.count(Contact.id)))
        values = session.scalar(select(func.count()).select_from(ContactFieldValue))
        messages = session.scalar(select(func.count(Message.id)))
    backend = database.engine.url.get_backend_name()
    print(f"database: {backend}, {total:,} contacts, {values:,} custom values, {messages:,} messages")
    if backend == "sqlite":
        from sigdesk.db import SQLITE_CACHE_KIB

        print(f"sqlite page cache: {SQLITE_CACHE_KIB:,} KiB per connection")
    print(f"segment count: {get(f'/segments/{segment_id}/count')['count']:,} contacts")
    print("load average: %.1f %.1f %.1f" % os.getloadavg())
    print("handler: the whole request (token check, query, tags, stage and custom values of the page, JSON);")
    print("query: the filter's own SQL (sigdesk.segments.services.page_rows / count_contacts), same run")
    print("base p95: the baseline (unfiltered first page) timed between this case's requests, so both see")
    print("the same load; x base = p95 / base p95 (the baseline's own row shows its whole-run p95)")
    print(
        f"{'case':38} {'p50 ms':>7} {'p95 ms':>7} {'base p95':>8} {'x base':>7} {'query p95':>10} {'items':>6}  target"
    )
    verdicts = []
    for name, path, target in cases:
        items = get(path)  # warm
        timings, queries, bases = [], [], []
        for _ in range(args.requests):
            began = time.perf_counter()
            get(cases[0][1])
            bases.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            get(path)
            timings.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            query_only(database, path)
            queries.append((time.perf_counter() - began) * 1000)
        p50, p95 = percentile(timings, 0.5), percentile(timings, 0.95)
        baseline = percentile(bases, 0.95)
        shown = len(items.get("items", [])) if "items" in items else items.get("count")
        verdict = "" if target is None else (f"< {target} ok" if p95 < target else f"< {target} MISSED")
        if target is not None:
            verdicts.append((name, p95, p95 / baseline, target))
        print(
            f"{name:38} {p50:7.1f} {p95:7.1f} {baseline:8.1f} {p95 / baseline:7.1f} "
            f"{percentile(queries, 0.95):10.1f} {shown:>6}  "
            f"{verdict}",
            flush=True,
        )
    print("load average: %.1f %.1f %.1f" % os.getloadavg())
    database.dispose()
    for name, p95, ratio, target in verdicts:
        verdict = "PASS" if p95 < target else "FAIL"
        print(f"{verdict} {backend}: {name}: p95 {p95:.1f} ms (x{ratio:.2f} base) < {target} ms")
    failed = [name for name, p95, _, target in verdicts if p95 >= target]
    print("all targets met" if not failed else f"targets missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
