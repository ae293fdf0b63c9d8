"""Build a sales-sized database for the issue 15 benches: 50,000 contacts, ~20 products, 300,000 orders (with
lines and their first status-history row) over 2 years, 1,000,000 messages in one conversation per contact.

    .venv/bin/python tests/perf/seed_sales.py --data-dir /tmp/sigdesk-sales                       # SQLite
    .venv/bin/python tests/perf/seed_sales.py --data-dir /tmp/sigdesk-sales-maria \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_sales                             # MariaDB (re-created)
    ... --contacts 2000 --orders 10000 --messages 20000                                          # small

Other benches import `seed(database_url, contacts, orders, messages)` (a SQLite URL seeds next to its file; a
MariaDB database is dropped and re-created). The schema comes from the real migrations (create_app), users from
the account service; the bulk rows go in with SQLAlchemy Core executemany over the models' own tables, in
batches, so every NOT NULL, type and index is the application's.

Customers are realistic enough for predictions and dashboards: 60% of contacts buy; of those about a quarter
reorder regularly (a usual product every 7-45 days ± 20%, a third of them churning part-way), most are occasional
buyers at random days, and some buy once. About 4% of orders are cancelled and 1% returned; the last week's
orders are still new/confirmed/paid/shipped. Order ids and numbers grow with time, as in use.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.perf.seed_inbox import FIRST, LAST, PASSWORD, conversation_sizes, message_text, prepare  # noqa: E402

BATCH = 10_000
DAYS = 730
# (sku, name, price in cents, category, owner's reorder interval or None)
PRODUCTS = (
    ("WATER-20L", "Water 20 L jug", 650, "water", 14),
    ("WATER-12x1L", "Water 12 x 1 L", 540, "water", None),
    ("WATER-6x1.5L", "Sparkling water 6 x 1.5 L", 420, "water", None),
    ("BREAD-SOUR", "Sourdough loaf", 450, "bakery", 7),
    ("BREAD-RYE", "Rye bread", 390, "bakery", None),
    ("CROISSANT-6", "Croissants (6)", 720, "bakery", None),
    ("CAKE-CHOC", "Chocolate cake", 2450, "bakery", None),
    ("COFFEE-BEANS-1KG", "Coffee beans 1 kg", 1890, "coffee", 30),
    ("COFFEE-GROUND-250", "Ground coffee 250 g", 690, "coffee", None),
    ("TEA-GREEN", "Green tea 100 g", 550, "coffee", None),
    ("DOGFOOD-12KG", "Dry dog food 12 kg", 5490, "pets", 30),
    ("CATFOOD-24", "Cat food 24 tins", 2290, "pets", 21),
    ("LITTER-10L", "Cat litter 10 L", 990, "pets", None),
    ("TREATS", "Dog treats", 349, "pets", None),
    ("VITAMIN-D", "Vitamin D 90 caps", 1295, "pharmacy", 90),
    ("IBUPROFEN-20", "Ibuprofen 400 mg (20)", 499, "pharmacy", None),
    ("PLASTERS", "Plasters assorted", 325, "pharmacy", None),
    ("HANDCREAM", "Hand cream 75 ml", 675, "pharmacy", None),
    ("GIFTCARD-25", "Gift card 25", 2500, "other", None),
    ("DELIVERY", "Delivery fee", 300, "other", None),
)
REGULAR_SKUS = [sku for sku, *_rest, days in PRODUCTS if days] + ["WATER-12x1L", "LITTER-10L"]
OPEN_STATUSES = ("new", "confirmed", "paid", "shipped")


@dataclass
class Seeded:
    url: Any
    agent_ids: list[int]
    timings: dict[str, float] = field(default_factory=dict)


def seed(
    database_url: str | None,
    contacts: int = 50_000,
    orders: int = 300_000,
    messages: int = 1_000_000,
    *,
    data_dir: Path | None = None,
    seed_value: int = 15,
    verbose: bool = True,
) -> Seeded:
    """Create the database (migrations, an owner and 5 agents) and fill it; returns its URL, the agents and the
    seconds each part took. `database_url` None means SQLite in `data_dir`."""
    from sqlalchemy.engine import make_url

    if database_url is None and data_dir is None:
        raise ValueError("give a database URL or a data directory")
    if data_dir is None:
        parsed = make_url(database_url)
        if parsed.get_backend_name() == "sqlite":
            data_dir = Path(parsed.database).resolve().parent
        else:
            data_dir = Path(tempfile.mkdtemp(prefix="sigdesk-seed-sales-"))
    if database_url and make_url(database_url).get_backend_name() == "sqlite":
        if Path(make_url(database_url).database).exists():
            raise SystemExit(f"{make_url(database_url).database} exists; give a new file")
    begun = time.monotonic()
    url, agent_ids = prepare(Path(data_dir), database_url)
    result = Seeded(url, agent_ids, {"schema": time.monotonic() - begun})
    _fill(result, contacts, orders, messages, seed_value, verbose)
    result.timings["total"] = time.monotonic() - begun
    return result


def _fill(result: Seeded, contacts: int, orders: int, messages: int, seed_value: int, verbose: bool) -> None:
    from sqlalchemy import create_engine, insert, text
    from sqlalchemy.orm import Session

    from sigdesk.general.clock import business_zone
    from sigdesk.models import Contact, Conversation, Message
    from sigdesk.models.sales import Order, OrderLine, OrderStatusChange, Product

    rng = random.Random(seed_value)
    engine = create_engine(result.url)
    sqlite = engine.dialect.name == "sqlite"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    span = (now - start).total_seconds()
    with Session(engine) as session:
        zone = business_zone(session)
    agents = result.agent_ids

    def step(name: str, since: float) -> float:
        result.timings[name] = time.monotonic() - since
        if verbose:
            print(f"{name}: {result.timings[name]:.1f} s", flush=True)
        return time.monotonic()

    with engine.connect() as connection:
        if sqlite:
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-500000", "temp_store=MEMORY"):
                connection.exec_driver_sql(f"PRAGMA {pragma}")
        else:
            connection.execute(text("SET foreign_key_checks=0, unique_checks=0"))
        connection.commit()

        def put(table, rows: list[dict[str, Any]]) -> None:
            for offset in range(0, len(rows), BATCH):
                connection.execute(insert(table), rows[offset : offset + BATCH])
                connection.commit()

        mark = time.monotonic()
        # --- contacts' arrival, then one conversation each, messages in time order ---
        created = [start + timedelta(seconds=rng.random() * span * 0.95) for _ in range(contacts)]
        created.sort()
        sizes = conversation_sizes(rng, contacts, messages) if contacts and messages >= contacts else [0] * contacts
        if contacts and 0 < messages < contacts:
            for n in rng.sample(range(contacts), messages):
                sizes[n] = 1
        events: list[tuple[float, int]] = []
        for n, size in enumerate(sizes):
            first = (created[n] - start).total_seconds()
            events.extend((first + rng.random() * (span - first), n + 1) for _ in range(size))
        events.sort()
        first_in: dict[int, datetime] = {}
        last_in: dict[int, datetime] = {}
        first_out: dict[int, datetime] = {}
        last_out: dict[int, datetime] = {}
        batch: list[dict[str, Any]] = []
        texts = [message_text(rng) for _ in range(2_000)]
        for message_id, (offset, contact_id) in enumerate(events, start=1):
            at = start + timedelta(seconds=offset)
            inbound = rng.random() < 0.55
            if inbound:
                first_in.setdefault(contact_id, at)
                last_in[contact_id] = at
            else:
                first_out.setdefault(contact_id, at)
                last_out[contact_id] = at
            batch.append(
                {
                    "id": message_id,
                    "wamid": f"wamid.sales.{message_id}",
                    "conversation_id": contact_id,
                    "contact_id": contact_id,
                    "direction": "in" if inbound else "out",
                    "type": "text",
                    "text": texts[message_id % len(texts)],
                    "status": None if inbound else ("read" if rng.random() < 0.7 else "delivered"),
                    "author_id": None if inbound or not agents else agents[message_id % len(agents)],
                    "forwarded": False,
                    "frequently_forwarded": False,
                    "attempts": 0,
                    "timestamp": at,
                    "created_at": at,
                }
            )
            if len(batch) >= BATCH:
                connection.execute(insert(Message.__table__), batch)
                connection.commit()
                batch = []
        if batch:
            connection.execute(insert(Message.__table__), batch)
            connection.commit()
        del events, batch
        mark = step(f"messages ({messages:,})", mark)

        contact_rows = []
        for n in range(1, contacts + 1):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            consent = rng.choices(("unknown", "opted_in", "opted_out"), weights=(60, 30, 10))[0]
            contact_rows.append(
                {
                    "id": n,
                    "wa_id": f"49{1510000000 + n * 37}",
                    "profile_name": name,
                    "display_name": None,
                    "opted_out_marketing": consent == "opted_out",
                    "marketing_consent": consent,
                    "created_at": created[n - 1],
                    "updated_at": created[n - 1],
                    "first_inbound_at": first_in.get(n),
                    "last_inbound_at": last_in.get(n),
                    "first_outbound_at": first_out.get(n),
                    "last_outbound_at": last_out.get(n),
                    "owner_id": agents[n % len(agents)] if agents and rng.random() < 0.5 else None,
                }
            )
        put(Contact.__table__, contact_rows)
        recent = now - timedelta(days=14)
        conversation_rows = []
        for n in range(1, contacts + 1):
            last = max(filter(None, (last_in.get(n), last_out.get(n))), default=None)
            status = "open" if last and last > recent and rng.random() < 0.7 else "resolved"
            conversation_rows.append(
                {
                    "id": n,
                    "contact_id": n,
                    "status": status,
                    "assignee_id": rng.choice(agents) if agents and rng.random() < 0.6 else None,
                    "last_message_at": last,
                    "last_inbound_at": last_in.get(n),
                    "unread_count": 0,
                    "created_at": created[n - 1],
                }
            )
        put(Conversation.__table__, conversation_rows)
        del contact_rows, conversation_rows, first_in, first_out, last_out
        mark = step(f"contacts and conversations ({contacts:,})", mark)

        # --- products and orders ---
        put(
            Product.__table__,
            [
                {
                    "id": n,
                    "sku": sku,
                    "name": name,
                    "price_minor": price,
                    "currency": "EUR",
                    "category": category,
                    "active": True,
                    "reorder_days": days,
                    "placeholder": False,
                    "created_at": start,
                    "updated_at": start,
                }
                for n, (sku, name, price, category, days) in enumerate(PRODUCTS, start=1)
            ],
        )
        product_by_sku = {sku: (n, name, price) for n, (sku, name, price, *_rest) in enumerate(PRODUCTS, start=1)}
        planned = _plan_orders(rng, created, start, orders)
        planned.sort()
        order_rows: list[dict[str, Any]] = []
        line_rows: list[dict[str, Any]] = []
        change_rows: list[dict[str, Any]] = []
        line_id = 0
        week_ago = now - timedelta(days=7)
        for order_id, (at, contact_id, usual) in enumerate(planned, start=1):
            status = (
                rng.choice(OPEN_STATUSES)
                if at > week_ago
                else rng.choices(("delivered", "cancelled", "returned"), weights=(95, 4, 1))[0]
            )
            skus = [usual] if usual else []
            for _ in range(rng.choices((0, 1, 2), weights=(55, 35, 10))[0] + (0 if usual else 1)):
                skus.append(PRODUCTS[min(int(rng.paretovariate(1.1)) - 1, len(PRODUCTS) - 1)][0])
            total = 0
            for position, sku in enumerate(dict.fromkeys(skus), start=1):
                product_id, name, price = product_by_sku[sku]
                quantity = rng.choices((1, 2, 3, 6), weights=(70, 20, 7, 3))[0]
                line_id += 1
                line_rows.append(
                    {
                        "id": line_id,
                        "order_id": order_id,
                        "position": position,
                        "product_id": product_id,
                        "sku": sku,
                        "description": name,
                        "quantity": Decimal(quantity),
                        "unit_price_minor": price,
                        "list_price_minor": price,
                        "price_reason": None,
                        "total_minor": price * quantity,
                    }
                )
                total += price * quantity
            order_rows.append(
                {
                    "id": order_id,
                    "number": 1000 + order_id,
                    "contact_id": contact_id,
                    "status": status,
                    "source": rng.choices(("import", "cart", "agent", "api"), weights=(50, 30, 15, 5))[0],
                    "currency": "EUR",
                    "total_minor": total,
                    "ordered_at": at,
                    "ordered_on": at.astimezone(zone).date(),
                    "created_at": at,
                    "updated_at": at,
                }
            )
            change_rows.append(
                {
                    "id": order_id,
                    "order_id": order_id,
                    "from_status": None,
                    "to_status": status,
                    "actor": "system",
                    "changed_at": at,
                }
            )
            if len(line_rows) >= BATCH:
                put(Order.__table__, order_rows)
                put(OrderLine.__table__, line_rows)
                put(OrderStatusChange.__table__, change_rows)
                order_rows, line_rows, change_rows = [], [], []
        put(Order.__table__, order_rows)
        put(OrderLine.__table__, line_rows)
        put(OrderStatusChange.__table__, change_rows)
        mark = step(f"orders ({len(planned):,}, {line_id:,} lines)", mark)

        if sqlite:
            connection.exec_driver_sql("ANALYZE")
        else:
            for table in ("contacts", "conversations", "messages", "products", "orders", "order_lines"):
                connection.exec_driver_sql(f"ANALYZE TABLE {table}").fetchall()
        connection.commit()
        if sqlite:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        step("analyze", mark)
    engine.dispose()


def _plan_orders(
    rng: random.Random, created: list[datetime], start: datetime, orders: int
) -> list[tuple[datetime, int, str | None]]:
    """Exactly `orders` (moment, contact id, usual sku or None) over the buyers, shaped by kind of customer."""
    if not created or orders <= 0:
        return []
    end = start + timedelta(days=DAYS)
    buyers = rng.sample(range(1, len(created) + 1), max(1, int(len(created) * 0.6)))
    kinds: list[tuple[int, str, float, int, str | None]] = []  # contact, kind, weight, interval, usual sku
    for contact_id in buyers:
        roll = rng.random()
        days_known = max(1.0, (end - created[contact_id - 1]).total_seconds() / 86400)
        if roll < 0.25:
            interval = rng.randint(7, 45)
            active = days_known * (rng.uniform(0.2, 0.8) if rng.random() < 0.33 else 1.0)
            kinds.append((contact_id, "regular", max(1.0, active / interval), interval, rng.choice(REGULAR_SKUS)))
        elif roll < 0.85:
            kinds.append((contact_id, "occasional", rng.uniform(1, 12) * days_known / DAYS + 1, 0, None))
        else:
            kinds.append((contact_id, "once", 1.0, 0, None))
    if orders < len(kinds):
        kinds, counts = kinds[:orders], [1] * orders
    else:
        scale = orders / sum(weight for _, _, weight, _, _ in kinds)
        counts = [max(1, round(weight * scale)) for _, _, weight, _, _ in kinds]
        while sum(counts) > orders:
            n = rng.randrange(len(counts))
            if counts[n] > 1:
                counts[n] -= 1
        while sum(counts) < orders:
            counts[rng.randrange(len(counts))] += 1
    planned: list[tuple[datetime, int, str | None]] = []
    for (contact_id, kind, _weight, interval, usual), count in zip(kinds, counts, strict=True):
        if count <= 0:
            continue
        first = created[contact_id - 1]
        room = (end - first).total_seconds()
        if kind == "regular":
            step = min(interval * 86400.0, room / (count + 0.5))
            at = (first - start).total_seconds() + rng.random() * max(0.0, room - step * count)
            for _ in range(count):
                moment = start + timedelta(seconds=min(at, DAYS * 86400.0 - 1))
                planned.append((_daytime(rng, moment), contact_id, usual))
                at += step * rng.uniform(0.8, 1.2)
        else:
            for _ in range(count):
                moment = first + timedelta(seconds=rng.random() * room)
                planned.append((_daytime(rng, moment), contact_id, None))
    return planned


def _daytime(rng: random.Random, moment: datetime) -> datetime:
    """Shops take orders in the day: 07:00-21:00 UTC, on the moment's own day, never in the future."""
    day = moment.replace(hour=7, minute=0, second=0)
    placed = day + timedelta(seconds=rng.randint(0, 14 * 3600))
    return min(placed, datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--db", help="database URL (default: SQLite in the data dir)")
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    if not args.db and (args.data_dir / "sigdesk.db").exists():
        raise SystemExit(f"{args.data_dir / 'sigdesk.db'} exists; give a new --data-dir")
    seeded = seed(args.db, args.contacts, args.orders, args.messages, data_dir=args.data_dir, seed_value=args.seed)
    print(f"done in {seeded.timings['total']:.1f} s; database {seeded.url.render_as_string(hide_password=True)}")
    print(f"users: owner@bench.example and agent1..5@bench.example, password {PASSWORD!r}")


if __name__ == "__main__":
    main()
