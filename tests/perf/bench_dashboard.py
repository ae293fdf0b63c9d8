"""The Analytics dashboard under sales load: every chart request for the last 90 days, through the real Flask
handlers (in-process test client, signed in as the owner, then as an agent for their own figures).

    .venv/bin/python tests/perf/bench_dashboard.py --data-dir /tmp/sigdesk-dashboard                   # SQLite
    .venv/bin/python tests/perf/bench_dashboard.py --data-dir /tmp/sigdesk-dashboard-maria \\
        --db mysql+pymysql://root@127.0.0.1:3306/sigdesk_bench_dashboard                            # MariaDB
    ... --reuse   # a database seeded before (by this script or tests/perf/seed_sales.py)

Seeds with tests/perf/seed_sales.py (50,000 contacts, 300,000 orders over 2 years, 1,000,000 messages) unless
--reuse, then adds what the dashboard reads and the sales seed leaves out: lifecycle stages and stage changes,
consent events, resolutions in the audit log (after each answered burst of customer messages), and the agent
who created each agent-sourced order. Rebuilds the rollups (`sigdesk analytics rebuild`, timed), then times
--requests requests of each chart with the baseline, a trivial page (GET /account/), timed between them, and
prints p50 and p95 in ms, the p95 as a ratio to the baseline's, and one PASS or FAIL line per chart against
the target p95 < 300 ms.
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

TARGET_MS = 300
CHARTS = (
    "revenue",
    "top_products",
    "top_customers",
    "customers",
    "conversations",
    "response_times",
    "messages",
    "heatmap",
    "team",
    "contacts",
    "funnel",
    "consent",
)
AGENT_CHARTS = ("revenue", "conversations", "response_times", "team", "contacts")
STAGES = ("Lead", "Qualified", "Customer", "Regular", "Lost")
BATCH = 10_000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def add_dashboard_history(database, agent_ids: list[int], seed_value: int = 22) -> dict[str, int]:
    """Stages and their changes, consent events, resolutions and order creators, in batches."""
    from sqlalchemy import func, insert, select, update

    from sigdesk.models import AuditEvent, ConsentEvent, Contact, Message, Order, Stage, StageChange

    rng = random.Random(seed_value)
    now = datetime.now(timezone.utc)
    made = {}
    with database.session() as session:
        stages = session.execute(select(Stage.id, Stage.name).order_by(Stage.position)).all()
        if not stages:
            for position, name in enumerate(STAGES, start=1):
                session.add(Stage(name=name, name_key=name.lower(), position=position))
            session.flush()
            stages = session.execute(select(Stage.id, Stage.name).order_by(Stage.position)).all()
        stage_ids, names = [row[0] for row in stages], [row[1] for row in stages]
        contact_ids = list(session.scalars(select(Contact.id)))
        changes, consents = [], []
        for contact_id in contact_ids:
            if rng.random() < 0.5:
                moment = now - timedelta(days=rng.uniform(0, 730))
                for index in range(rng.randint(1, min(4, len(stage_ids)))):
                    changes.append(
                        {
                            "contact_id": contact_id,
                            "stage_id": stage_ids[index],
                            "stage_name": names[index],
                            "channel": "web",
                            "changed_at": moment,
                        }
                    )
                    moment += timedelta(days=rng.uniform(1, 60))
                    if moment > now:
                        break
            if rng.random() < 0.4:
                consents.append(
                    {
                        "contact_id": contact_id,
                        "status": "opted_in" if rng.random() < 0.8 else "opted_out",
                        "source": "import",
                        "at": now - timedelta(days=rng.uniform(0, 730)),
                        "created_at": now,
                    }
                )
        for start in range(0, len(changes), BATCH):
            session.execute(insert(StageChange), changes[start : start + BATCH])
        for start in range(0, len(consents), BATCH):
            session.execute(insert(ConsentEvent), consents[start : start + BATCH])
        made["stage changes"], made["consent events"] = len(changes), len(consents)
        for index, agent_id in enumerate(agent_ids):
            session.execute(
                update(Order)
                .where(Order.source.in_(("agent", "cart")), Order.id % len(agent_ids) == index)
                .values(created_by=agent_id)
            )
        session.commit()
        resolutions: list[dict] = []
        rows = session.execute(
            select(Message.conversation_id, Message.direction, Message.timestamp)
            .order_by(Message.conversation_id, Message.timestamp)
            .execution_options(yield_per=BATCH)
        )
        previous = None
        for conversation_id, direction, moment in rows:
            if previous is not None and previous[0] != conversation_id and previous[1] == "out":
                resolutions.append(_resolution(previous, rng))
            elif previous is not None and previous[1] == "out" and direction == "in":
                if (moment - previous[2]) > timedelta(hours=12):
                    resolutions.append(_resolution(previous, rng))
            previous = (conversation_id, direction, moment)
        if previous is not None and previous[1] == "out":
            resolutions.append(_resolution(previous, rng))
        for start in range(0, len(resolutions), BATCH):
            session.execute(insert(AuditEvent), resolutions[start : start + BATCH])
        made["resolutions"] = len(resolutions)
        made["orders by agents"] = session.scalar(select(func.count()).where(Order.created_by.is_not(None)))
    return made


def _resolution(previous: tuple, rng: random.Random) -> dict:
    conversation_id, _direction, moment = previous
    return {
        "at": moment + timedelta(minutes=rng.uniform(5, 600)),
        "action": "conversation.status",
        "target": f"conversation:{conversation_id}",
        "detail": '{"from": "open", "to": "resolved"}',
        "channel": "web",
    }


def sign_in(app, email: str, password: str):
    from tests.conftest import csrf_from

    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def timed(client, path: str) -> float:
    begun = time.perf_counter()
    response = client.get(path, headers={"Accept": "application/json"})
    spent = (time.perf_counter() - begun) * 1000
    assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True)[:300])
    return spent


def bench(client, charts: tuple[str, ...], requests: int, label: str) -> bool:
    ok = True
    print(f"\n{label}: chart, p50 ms, p95 ms, p95 / baseline p95 (GET /account/)")
    for key in charts:
        path = f"/analytics/charts/{key}?period=90d"
        timed(client, path)  # warm: the first request reads the pages into the cache
        spent, baseline = [], []
        for _ in range(requests):
            spent.append(timed(client, path))
            baseline.append(timed(client, "/account/"))
        p95 = percentile(spent, 0.95)
        base = percentile(baseline, 0.95)
        passed = p95 < TARGET_MS
        ok = ok and passed
        print(
            f"  {key:15s} p50 {percentile(spent, 0.5):7.1f}  p95 {p95:7.1f}  x{p95 / base:5.1f}"
            f"  (baseline p95 {base:5.1f})  {'PASS' if passed else 'FAIL'} p95 < {TARGET_MS} ms"
        )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--db", help="database URL (default: SQLite in the data dir)")
    parser.add_argument("--reuse", action="store_true", help="the database is seeded already")
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from sigdesk.analytics.rollups import rebuild
    from sigdesk.app import create_app
    from sigdesk.config import Config
    from sigdesk.models import User
    from sigdesk.models.analytics import AnalyticsState
    from tests.perf.seed_inbox import PASSWORD

    if not args.reuse:
        from tests.perf.seed_sales import seed

        seed(args.db, args.contacts, args.orders, args.messages, data_dir=args.data_dir)
    app = create_app(Config.from_env(data_dir=args.data_dir, database_url=args.db, bcrypt_rounds=4))
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        agents = list(session.scalars(select(User.id).where(User.role == "agent").order_by(User.id)))
        built = session.get(AnalyticsState, "applied") is not None
        from sigdesk.models import StageChange

        has_history = bool(session.scalar(select(func.count()).select_from(StageChange)))
    if not has_history:
        begun = time.monotonic()
        made = add_dashboard_history(database, agents)
        print(f"added {made} in {time.monotonic() - begun:.1f} s")
    if not built or not has_history:
        begun = time.monotonic()
        with database.session() as session:
            messages, episodes = rebuild(session)
        print(f"rebuilt rollups from {messages} messages: {episodes} episodes in {time.monotonic() - begun:.1f} s")
    print(f"database: {database.engine.dialect.name}; period: last 90 days; {args.requests} requests per chart")
    owner_ok = bench(sign_in(app, "owner@bench.example", PASSWORD), CHARTS, args.requests, "owner (everyone)")
    agent_ok = bench(sign_in(app, "agent1@bench.example", PASSWORD), AGENT_CHARTS, args.requests, "agent (own)")
    print("PASS" if owner_ok and agent_ok else "FAIL", f"every chart request p95 < {TARGET_MS} ms")


if __name__ == "__main__":
    main()
