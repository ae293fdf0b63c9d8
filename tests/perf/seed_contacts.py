"""Build a CRM-sized database: 100,000 contacts with a full record, 10 custom fields each, 20 tags, stages,
owners, consent, conversations with labels, and 1,000,000 messages (cheap rows: the contact benches read
the contacts' own times, not message bodies).

    .venv/bin/python tests/perf/seed_contacts.py --data-dir /tmp/sigdesk-contacts                   # SQLite
    .venv/bin/python tests/perf/seed_contacts.py --data-dir /tmp/sigdesk-contacts-maria \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_contacts                           # MariaDB (re-created)

Other benches import `seed_contacts(data_dir, db_url, contacts, messages)`. The schema comes from the real
migrations (create_app), users and stages from the app; the bulk rows go in with executemany in big
transactions (tests/perf/seed_inbox.py's helpers), so every index is maintained as in use.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.perf.seed_inbox import BATCH, FIRST, LAST, PASSWORD, connect, insert, prepare, stamp  # noqa: E402

TAGS = 20
CITIES = "Berlin Hamburg München Köln Paris Lyon Madrid Lisboa Roma Milano Wien Zürich London Dublin Kraków".split()
COUNTRIES = ["DE", "DE", "DE", "FR", "ES", "PT", "IT", "AT", "CH", "GB", "IE", "PL"]
COMPANIES = [f"{name} {kind}" for name in LAST[:30] for kind in ("GmbH", "AG", "Ltd", "SARL")]
PLANS = ["free", "basic", "pro", "enterprise"]
INTERESTS = ["golf", "tennis", "sailing", "wine", "cooking", "travel", "music", "art"]
SOURCES = ["website", "referral", "fair", "instagram", "walk-in", "newsletter"]
# The custom fields every contact has a value of: (key, kind).
FIELDS = (
    ("plan", "choice"),
    ("interests", "choices"),
    ("budget", "number"),
    ("revenue", "currency"),
    ("visits", "number"),
    ("birthday", "date"),
    ("renewal", "date"),
    ("newsletter", "boolean"),
    ("source", "text"),
    ("website", "link"),
)


def _value(rng: random.Random, kind: str, key: str, n: int) -> tuple[str | None, float | None, date | None]:
    if kind == "choice":
        return rng.choices(PLANS, weights=(50, 30, 15, 5))[0], None, None
    if kind == "choices":
        return json.dumps(sorted(rng.sample(INTERESTS, rng.randint(1, 3))), ensure_ascii=False), None, None
    if kind in ("number", "currency"):
        return None, float(rng.randint(0, 10_000) if key != "visits" else rng.randint(0, 60)), None
    if kind == "date":
        base = date(1960, 1, 1) if key == "birthday" else date.today() - timedelta(days=200)
        return None, None, base + timedelta(days=rng.randint(0, 20_000 if key == "birthday" else 600))
    if kind == "boolean":
        return None, float(rng.random() < 0.4), None
    if kind == "link":
        return f"https://example.com/c/{n}", None, None
    return rng.choice(SOURCES), None, None


def seed_contacts(
    data_dir: Path, db_url: str | None, contacts: int = 100_000, messages: int = 1_000_000, seed: int = 7
):
    """Create and fill the database; returns (database URL, agent ids)."""
    url, agent_ids = prepare(data_dir, db_url)
    rng = random.Random(seed)
    connection, mark, sqlite = connect(url)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    begun = time.monotonic()

    def marks(count: int) -> str:
        return ", ".join([mark] * count)

    def put(sql: str, rows: list[tuple]) -> None:
        for offset in range(0, len(rows), BATCH):
            insert(connection, sqlite, sql, rows[offset : offset + BATCH])

    # --- contacts ---
    rows = []
    talking: list[int] = []
    for n in range(1, contacts + 1):
        created = now - timedelta(seconds=rng.randint(0, 2 * 365 * 86400))
        inbound = outbound = None
        if rng.random() < 0.6:
            talking.append(n)
            inbound = created + (now - created) * rng.random()
            outbound = inbound + timedelta(minutes=rng.randint(1, 600)) if rng.random() < 0.8 else None
            if outbound is not None and outbound > now:
                outbound = now
        consent = rng.choices(("unknown", "opted_in", "opted_out"), weights=(60, 30, 10))[0]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        rows.append(
            (
                n,
                f"49{1510000000 + n * 37}",
                f"{first} {last}",
                f"{first} {last} ({rng.choice(CITIES)})" if rng.random() < 0.2 else None,
                consent == "opted_out",
                consent,
                f"{first.lower()}.{n}@example.com" if rng.random() < 0.3 else None,
                rng.choice(COMPANIES) if rng.random() < 0.4 else None,
                rng.choice(CITIES) if rng.random() < 0.7 else None,
                rng.choice(COUNTRIES) if rng.random() < 0.8 else None,
                rng.choice(("de", "en", "fr", "es")) if rng.random() < 0.5 else None,
                rng.choice(agent_ids) if rng.random() < 0.6 else None,
                stamp(created, sqlite),
                stamp(created + (now - created) * rng.random(), sqlite),
                stamp(inbound, sqlite) if inbound else None,
                stamp(outbound, sqlite) if outbound else None,
            )
        )
    put(
        "INSERT INTO contacts (id, wa_id, profile_name, display_name, opted_out_marketing, marketing_consent, email, "
        "company, city, country, language, owner_id, created_at, updated_at, last_inbound_at, last_outbound_at) "
        f"VALUES ({marks(16)})",
        rows,
    )
    print(f"contacts: {contacts:,} in {time.monotonic() - begun:.1f} s", flush=True)

    # --- tags (skewed: the first ones common), stages ---
    put(
        f"INSERT INTO tags (id, name, name_key, color, created_at) VALUES ({marks(5)})",
        [(t, f"Tag {t:02d}", _key(f"Tag {t:02d}"), t % 8, stamp(now, sqlite)) for t in range(1, TAGS + 1)],
    )
    rows = []
    for n in range(1, contacts + 1):
        for tag in {min(TAGS, int(rng.paretovariate(0.8))) for _ in range(rng.choice((0, 1, 1, 2, 3)))}:
            rows.append((n, tag, stamp(now, sqlite)))
    put(f"INSERT INTO contact_tags (contact_id, tag_id, created_at) VALUES ({marks(3)})", rows)
    stage_ids = [row[0] for row in _query(connection, sqlite, "SELECT id FROM stages ORDER BY position")]
    rows = [
        (n, rng.choices(stage_ids, weights=(40, 25, 20, 10, 5)[: len(stage_ids)])[0], stamp(now, sqlite))
        for n in range(1, contacts + 1)
        if stage_ids and rng.random() < 0.7
    ]
    put(f"INSERT INTO contact_stages (contact_id, stage_id, since) VALUES ({marks(3)})", rows)
    print(f"tags and stages in {time.monotonic() - begun:.1f} s", flush=True)

    # --- custom fields: one value of each for every contact ---
    put(
        f"INSERT INTO contact_fields (id, {_quoted('key', sqlite)}, label, kind, required, position, created_at) "
        f"VALUES ({marks(7)})",
        [(i, key, key.title(), kind, False, i, stamp(now, sqlite)) for i, (key, kind) in enumerate(FIELDS, start=1)],
    )
    sql = (
        "INSERT INTO contact_field_values (contact_id, field_id, text_value, number_value, date_value) "
        f"VALUES ({marks(5)})"
    )
    batch = []
    for n in range(1, contacts + 1):
        for i, (key, kind) in enumerate(FIELDS, start=1):
            text, number, day = _value(rng, kind, key, n)
            batch.append((n, i, text, number, day.isoformat() if day and sqlite else day))
        if len(batch) >= BATCH:
            insert(connection, sqlite, sql, batch)
            batch = []
    if batch:
        insert(connection, sqlite, sql, batch)
    print(f"custom values: {contacts * len(FIELDS):,} in {time.monotonic() - begun:.1f} s", flush=True)

    # --- conversations (the contacts who talked), labels, cheap messages ---
    put(
        f"INSERT INTO conversations (id, contact_id, status, last_message_at, unread_count, created_at) VALUES ({marks(6)})",
        [(n, n, "resolved", stamp(now, sqlite), 0, stamp(now, sqlite)) for n in talking],
    )
    put(
        f"INSERT INTO labels (id, name, color, created_at) VALUES ({marks(4)})",
        [
            (i, name, i, stamp(now, sqlite))
            for i, name in enumerate(("Urgent", "Complaint", "Order", "Lead", "Spam"), start=1)
        ],
    )
    put(
        f"INSERT INTO conversation_labels (conversation_id, label_id, created_at) VALUES ({marks(3)})",
        [(n, rng.randint(1, 5), stamp(now, sqlite)) for n in talking if rng.random() < 0.2],
    )
    sql = (
        "INSERT INTO messages (id, wamid, conversation_id, contact_id, direction, type, forwarded, "
        f"frequently_forwarded, attempts, timestamp, created_at) VALUES ({marks(11)})"
    )
    batch = []
    for message_id in range(1, messages + 1 if talking else 1):
        who = talking[rng.randrange(len(talking))]
        when = stamp(now - timedelta(seconds=rng.randint(0, 365 * 86400)), sqlite)
        batch.append(
            (
                message_id,
                f"wamid.c.{message_id}",
                who,
                who,
                rng.choice(("in", "out")),
                "text",
                False,
                False,
                0,
                when,
                when,
            )
        )
        if len(batch) >= BATCH:
            insert(connection, sqlite, sql, batch)
            batch = []
    if batch:
        insert(connection, sqlite, sql, batch)
    print(f"messages: {messages:,} in {time.monotonic() - begun:.1f} s", flush=True)

    if sqlite:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("ANALYZE")
    else:
        cursor = connection.cursor()
        for table in (
            "contacts",
            "contact_tags",
            "contact_stages",
            "contact_field_values",
            "conversations",
            "messages",
        ):
            cursor.execute(f"ANALYZE TABLE {table}")
            cursor.fetchall()
    connection.close()
    print(f"seeded in {time.monotonic() - begun:.1f} s", flush=True)
    return url, agent_ids


def _key(name: str) -> str:
    from sigdesk.lifecycle.services import name_key

    return name_key(name)


def _quoted(name: str, sqlite: bool) -> str:
    return f'"{name}"' if sqlite else f"`{name}`"


def _query(connection, sqlite: bool, sql: str) -> list[tuple]:
    if sqlite:
        return connection.execute(sql).fetchall()
    cursor = connection.cursor()
    cursor.execute(sql)
    return list(cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--db", help="database URL (default: SQLite in the data dir)")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    seed_contacts(args.data_dir, args.db, args.contacts, args.messages, args.seed)
    print(f"users: owner@bench.example and agent1..5@bench.example, password {PASSWORD!r}")


if __name__ == "__main__":
    main()
