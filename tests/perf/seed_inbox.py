"""Build an inbox-sized database for bench_inbox.py: 50,000 contacts, 1,000,000 messages.

    .venv/bin/python tests/perf/seed_inbox.py --data-dir /tmp/sigdesk-bench            # SQLite
    .venv/bin/python tests/perf/seed_inbox.py --data-dir /tmp/sigdesk-bench-maria \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_inbox                           # MariaDB (dropped and re-created)

The schema comes from the real migrations (create_app), users from the real account service; the
bulk rows are inserted with executemany in big transactions, so the full-text index is maintained
by the same triggers / FULLTEXT indexes as in use. Messages are inserted in time order (ids grow
with time, as in use); conversations get a skewed size (a few with thousands of messages), an
assignee (40% unassigned, the rest over 5 agents), a status, last_message_at and unread counts.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery"
AGENTS = 5
BATCH = 20_000

FIRST = (
    "Maria Anna Peter Thomas Julia Michael Laura Stefan Sophie Lukas Emma Jonas Mia Paul Lea Felix Hannah Jan Lena "
    "Tim Sarah David Lisa Daniel Katharina Tobias Johanna Florian Marie Sebastian Nina Alexander Clara Max Zoë "
    "José Amélie Björn Søren Ayşe Mehmet Fatma Ali Olga Ivan Chen Wei Priya Raj Aisha Omar Luca Giulia"
).split()
LAST = (
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf Schröder "
    "Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann García "
    "Martínez Rossi Russo Dubois Moreau Yılmaz Kaya Nowak Kowalski Novák Jensen Hansen Smith Jones Brown"
).split()
COMMON = (
    "hi hello thanks thank you please yes no ok okay good great the a is are my your our we I it this that for "
    "to of and in on at with when what where how can could would will today tomorrow morning afternoon evening "
    "week order delivery parcel package invoice payment price offer appointment booking table reservation "
    "question answer help problem issue address number name time date please sure perfect wonderful sorry "
    "again later soon now here there still already just also very much many more"
).split()
RARE = (
    "refund warranty voucher discount cancellation complaint tracking courier shipment receipt quotation deposit "
    "allergy gluten vegan birthday wedding catering anniversary pickup takeaway repair replacement installation "
    "measurement fitting alteration subscription membership newsletter brochure catalogue sample colour size "
    "weekend holiday closing opening hours parking entrance floor elevator café crème brûlée Kuchen Bäckerei "
    "Lieferung Rechnung Termin Grüße danke bitte straße"
).split()
PHRASES = (
    "Hi, is my order {n} ready for pickup?",
    "Thanks! The parcel arrived today.",
    "Can I book a table for {k} people on {day}?",
    "Your invoice {n} is attached, please pay within 14 days.",
    "When do you open {day}?",
    "Tracking number {n}, the courier comes {day}.",
    "I would like a refund for order {n}, it arrived damaged.",
    "See you {day} at {k} o'clock!",
)
DAYS = "monday tuesday wednesday thursday friday saturday sunday tomorrow".split()


def message_text(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(PHRASES).format(n=rng.randint(1000, 99999), k=rng.randint(2, 12), day=rng.choice(DAYS))
    words = rng.choices(COMMON, k=rng.randint(3, 18))
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        words.insert(rng.randrange(len(words) + 1), rng.choice(RARE))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice((".", "?", "!", ""))


def conversation_sizes(rng: random.Random, conversations: int, messages: int) -> list[int]:
    weights = [rng.paretovariate(1.2) for _ in range(conversations)]
    scale = (messages - conversations) / sum(weights)
    sizes = [1 + int(weight * scale) for weight in weights]
    sizes[0] += messages - sum(sizes)  # the remainder makes one very long thread
    return sizes


def stamp(value: datetime, sqlite: bool):
    naive = value.astimezone(timezone.utc).replace(tzinfo=None)
    return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else naive.replace(microsecond=0)


def prepare(data_dir: Path, db_url: str | None):
    from tests.mysql import recreate_database

    if db_url and db_url.startswith("mysql"):
        recreate_database(db_url)
    elif (data_dir / "sigdesk.db").exists():
        raise SystemExit(f"{data_dir / 'sigdesk.db'} exists; give a new --data-dir")

    from sigdesk.app import create_app
    from sigdesk.auth import services as accounts
    from sigdesk.config import Config

    data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(Config.from_env(data_dir=data_dir, database_url=db_url, bcrypt_rounds=4))
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        accounts.create_user(session, "owner@bench.example", "Bench Owner", "owner", PASSWORD, rounds=4)
        agents = [
            accounts.create_user(session, f"agent{n}@bench.example", f"Agent {n}", "agent", PASSWORD, rounds=4)
            for n in range(1, AGENTS + 1)
        ]
        agent_ids = [agent.id for agent in agents]
    url = database.engine.url
    database.dispose()
    return url, agent_ids


def connect(url):
    if url.get_backend_name() == "sqlite":
        import sqlite3

        connection = sqlite3.connect(url.database, isolation_level=None)
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "cache_size=-1000000",
            "temp_store=MEMORY",
            "foreign_keys=OFF",
        ):
            connection.execute(f"PRAGMA {pragma}")
        return connection, "?", True
    import pymysql

    connection = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
        charset="utf8mb4",
    )
    cursor = connection.cursor()
    cursor.execute("SET foreign_key_checks=0, unique_checks=0")
    return connection, "%s", False


def insert(connection, sqlite: bool, sql: str, rows: list[tuple]) -> None:
    if sqlite:
        connection.execute("BEGIN")
        connection.executemany(sql, rows)
        connection.execute("COMMIT")
    else:
        cursor = connection.cursor()
        cursor.executemany(sql, rows)
        connection.commit()


def seed(url, agent_ids: list[int], contacts: int, messages: int, seed_value: int) -> None:
    rng = random.Random(seed_value)
    connection, mark, sqlite = connect(url)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=365)
    span = (now - start).total_seconds()
    begun = time.monotonic()

    contact_rows = []
    for n in range(1, contacts + 1):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        display = (
            f"{name} ({rng.choice(('shop', 'VIP', 'supplier', 'Berlin', 'Hamburg'))})" if rng.random() < 0.2 else None
        )
        contact_rows.append((n, f"49{1510000000 + n * 37}", name, display, False, stamp(start, sqlite)))
    sql = f"INSERT INTO contacts (id, wa_id, profile_name, display_name, opted_out_marketing, created_at) VALUES ({', '.join([mark] * 6)})"
    for offset in range(0, len(contact_rows), BATCH):
        insert(connection, sqlite, sql, contact_rows[offset : offset + BATCH])
    print(f"contacts: {contacts:,} in {time.monotonic() - begun:.1f} s", flush=True)

    sizes = conversation_sizes(rng, contacts, messages)
    events: list[tuple[float, int]] = []
    for conversation_id, size in enumerate(sizes, start=1):
        first = rng.random() * span * 0.9
        length = rng.random() * (span - first)
        events.extend((first + rng.random() * length, conversation_id) for _ in range(size))
    events.sort()
    print(f"planned {len(events):,} messages in {time.monotonic() - begun:.1f} s", flush=True)

    last_at: dict[int, datetime] = {}
    last_in: dict[int, datetime] = {}
    trailing_in: dict[int, int] = {}
    sql = (
        f"INSERT INTO messages (id, wamid, conversation_id, contact_id, direction, type, text, status, author_id, "
        f"forwarded, frequently_forwarded, attempts, timestamp, created_at) VALUES ({', '.join([mark] * 14)})"
    )
    batch = []
    for message_id, (offset, conversation_id) in enumerate(events, start=1):
        at = start + timedelta(seconds=offset)
        inbound = rng.random() < 0.6
        when = stamp(at, sqlite)
        batch.append(
            (
                message_id,
                f"wamid.bench.{message_id}",
                conversation_id,
                conversation_id,
                "in" if inbound else "out",
                "text",
                message_text(rng),
                None if inbound else rng.choice(("delivered", "read", "read")),
                None if inbound else rng.choice(agent_ids),
                False,
                False,
                0,
                when,
                when,
            )
        )
        last_at[conversation_id] = at
        if inbound:
            last_in[conversation_id] = at
            trailing_in[conversation_id] = trailing_in.get(conversation_id, 0) + 1
        else:
            trailing_in[conversation_id] = 0
        if len(batch) >= BATCH:
            insert(connection, sqlite, sql, batch)
            batch = []
            if message_id % 200_000 == 0:
                print(f"  {message_id:,} messages, {time.monotonic() - begun:.0f} s", flush=True)
    if batch:
        insert(connection, sqlite, sql, batch)
    print(f"messages: {len(events):,} in {time.monotonic() - begun:.1f} s", flush=True)

    conversation_rows = []
    recent = now - timedelta(days=14)
    for conversation_id in range(1, contacts + 1):
        at = last_at[conversation_id]
        status = (
            "open"
            if at > recent and rng.random() < 0.7
            else rng.choice(("resolved", "resolved", "resolved", "pending", "open"))
        )
        assignee = None if rng.random() < 0.4 else rng.choice(agent_ids)
        unread = min(trailing_in.get(conversation_id, 0), 9) if status == "open" else 0
        inbound_at = last_in.get(conversation_id)
        conversation_rows.append(
            (
                conversation_id,
                conversation_id,
                status,
                assignee,
                stamp(at, sqlite),
                stamp(inbound_at, sqlite) if inbound_at else None,
                unread,
                stamp(start, sqlite),
            )
        )
    sql = (
        f"INSERT INTO conversations (id, contact_id, status, assignee_id, last_message_at, last_inbound_at, "
        f"unread_count, created_at) VALUES ({', '.join([mark] * 8)})"
    )
    for offset in range(0, len(conversation_rows), BATCH):
        insert(connection, sqlite, sql, conversation_rows[offset : offset + BATCH])
    if sqlite:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("ANALYZE")
    else:
        cursor = connection.cursor()
        for table in ("contacts", "conversations", "messages"):
            cursor.execute(f"ANALYZE TABLE {table}")
            cursor.fetchall()
    connection.close()
    print(f"conversations: {contacts:,}; done in {time.monotonic() - begun:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--db", help="database URL (default: SQLite in the data dir)")
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    url, agent_ids = prepare(args.data_dir, args.db)
    seed(url, agent_ids, args.contacts, args.messages, args.seed)
    print(f"users: owner@bench.example and agent1..{AGENTS}@bench.example, password {PASSWORD!r}")


if __name__ == "__main__":
    main()
