"""A contact's purchase history under sales load: GET /api/v1/contacts/{id}/purchase-history through the real Flask
handler (in-process test client, API token), for the heaviest buyers of a 300,000-order database and for one
contact given 400 orders more, so "hundreds of orders" is measured whatever the seed made.

    .venv/bin/python tests/perf/bench_purchase_history.py --data-dir /tmp/sigdesk-history              # SQLite
    .venv/bin/python tests/perf/bench_purchase_history.py --data-dir /tmp/sigdesk-history-maria \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_history                                 # MariaDB

Seeds with tests/perf/seed_sales.py (50,000 contacts, 300,000 orders; --messages 1,000,000 by default, lower it
with --messages for a quicker run) unless --reuse. Prints p50 and p95 in ms per case, then PASS or FAIL against
the target: p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TARGET_MS = 50
EXTRA_ORDERS = 400


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _heavy_contact(app) -> int:
    """A contact given EXTRA_ORDERS orders of two lines each, spread over two years."""
    from sqlalchemy import func, insert, select

    from sigdesk.models import Contact
    from sigdesk.models.sales import Order, OrderLine, OrderStatusChange, Product

    rng = random.Random(7)
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = session.scalar(select(func.min(Contact.id)))
        products = session.execute(select(Product.id, Product.sku, Product.name, Product.price_minor)).all()
        number = session.scalar(select(func.max(Order.number))) or 1000
        today = date.today()
        for n in range(EXTRA_ORDERS):
            day = today - timedelta(days=rng.randrange(730))
            picked = rng.sample(products, 2)
            total = sum(item.price_minor * 2 for item in picked)
            at = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
            order_id = session.execute(
                insert(Order).values(
                    number=number + n + 1,
                    contact_id=contact_id,
                    status="delivered",
                    source="import",
                    currency="EUR",
                    total_minor=total,
                    ordered_at=at,
                    ordered_on=day,
                    created_at=at,
                    updated_at=at,
                )
            ).inserted_primary_key[0]
            session.execute(
                insert(OrderLine),
                [
                    dict(
                        order_id=order_id,
                        position=p + 1,
                        product_id=item.id,
                        sku=item.sku,
                        description=item.name,
                        quantity=2,
                        unit_price_minor=item.price_minor,
                        list_price_minor=item.price_minor,
                        total_minor=item.price_minor * 2,
                    )
                    for p, item in enumerate(picked)
                ],
            )
            session.execute(
                insert(OrderStatusChange).values(order_id=order_id, to_status="delivered", actor="bench", changed_at=at)
            )
    return contact_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--db", default=None, help="a MariaDB URL (re-created); default SQLite in the data dir")
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="the database was seeded before")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from sigdesk.app import create_app
    from sigdesk.auth import services as accounts
    from sigdesk.config import Config
    from sigdesk.models import User
    from sigdesk.models.sales import Order
    from tests.perf.seed_sales import seed

    url = args.db or f"sqlite:///{args.data_dir / 'sigdesk.db'}"
    if not args.reuse:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        seed(args.db, args.contacts, args.orders, args.messages, data_dir=args.data_dir, verbose=False)
        print(f"seeded in {time.monotonic() - began:.0f} s")
    app = create_app(Config(data_dir=args.data_dir, database_url=url, testing=True))
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        owner = session.scalars(select(User).where(User.role == "owner")).first()
        token = accounts.create_api_token(session, owner, f"bench-{time.time_ns()}")
        heaviest = [
            row[0]
            for row in session.execute(
                select(Order.contact_id).group_by(Order.contact_id).order_by(func.count().desc()).limit(20)
            )
        ]
    heavy = _heavy_contact(app) if not args.reuse else heaviest[0]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    failed = False
    for label, contact_ids in (
        ("heaviest seeded buyers", heaviest),
        (f"a contact with {EXTRA_ORDERS}+ orders", [heavy]),
    ):
        timings, baseline = [], []
        for n in range(args.requests):
            contact_id = contact_ids[n % len(contact_ids)]
            began = time.perf_counter()
            answer = client.get(f"/api/v1/contacts/{contact_id}/purchase-history", headers=headers)
            timings.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            began = time.perf_counter()
            client.get("/api/v1/me", headers=headers)  # the cheapest API request: what the machine's load costs
            baseline.append((time.perf_counter() - began) * 1000)
        timings, baseline = timings[5:], baseline[5:]  # warm-up
        p50, p95 = _percentile(timings, 0.5), _percentile(timings, 0.95)
        orders = answer.get_json()["order_count"]
        ok = p95 < TARGET_MS
        failed |= not ok
        print(
            f"{'PASS' if ok else 'FAIL'} purchase history, {label} (last: {orders} orders): p50 {p50:.1f} ms, "
            f"p95 {p95:.1f} ms (target p95 < {TARGET_MS} ms); GET /me meanwhile p50 {_percentile(baseline, 0.5):.1f} ms"
        )
    state.database.dispose()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
