"""Migration 0010: relayed forgeries stored whole by earlier versions become digests; their bodies go,
read one at a time so a database full of 4 MB forgeries does not need gigabytes to upgrade."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from sigdesk.config import resource_root
from sigdesk.db import Database, alembic_config
from sigdesk.relay_client.receive import SIGNATURE_MISMATCH
from tests.mysql import recreate_database

pytestmark = pytest.mark.database

MB = 1024 * 1024
INSERT = text(
    "INSERT INTO webhook_deliveries (id, received_at, source, raw, size, state, error, attempts, "
    "event_count) VALUES (:id, '2026-12-01 10:00:00', 'relay', :raw, :size, :state, :error, 0, 0)"
)


@pytest.fixture
def database(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """An empty database (no tables at all), so the migrations run from the start."""
    if database_url.startswith("mysql"):
        recreate_database(database_url)
    (tmp_path / "data").mkdir(exist_ok=True)
    database = Database(database_url)
    yield database
    database.dispose()
    if database_url.startswith("mysql"):
        recreate_database(database_url)  # the next test's create_app migrates it afresh


def forgery(n: int, size: int) -> bytes:
    return (b'{"forged": %d}' % n).ljust(size, b" ")


def test_upgrade_turns_stored_forgeries_into_digests_and_keeps_genuine_deliveries(database):
    config = alembic_config(database, resource_root() / "migrations")
    command.upgrade(config, "0009")
    forged = b'{"forged": true}' * 1000
    with database.engine.begin() as conn:
        conn.execute(INSERT, {"id": 1, "raw": b"{}", "size": 2, "state": "processed", "error": None})
        conn.execute(
            INSERT, {"id": 2, "raw": forged, "size": len(forged), "state": "quarantined", "error": SIGNATURE_MISMATCH}
        )
        conn.execute(
            text(
                "INSERT INTO relay_receipts (install, seq, delivery_id, received_at) VALUES "
                "('i', 1, 1, '2026-12-01 10:00:00'), ('i', 2, 2, '2026-12-01 10:00:00')"
            )
        )
    command.upgrade(config, "0010")
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM webhook_deliveries")).scalars().all() == [1]
        assert conn.execute(text("SELECT seq, delivery_id FROM relay_receipts ORDER BY seq")).all() == [
            (1, 1),
            (2, None),
        ]
        digest = conn.execute(text("SELECT source, reason, size, sha256, install, seq FROM rejected_deliveries")).one()
    assert tuple(digest) == ("relay", "bad_signature", len(forged), hashlib.sha256(forged).hexdigest(), "i", 2)
    command.downgrade(config, "0009")


def test_upgrade_reads_one_forged_body_at_a_time(database):
    config = alembic_config(database, resource_root() / "migrations")
    command.upgrade(config, "0009")
    bodies = [forgery(n, MB) for n in range(1, 17)]
    with database.engine.begin() as conn:
        for n, body in enumerate(bodies, start=1):
            conn.execute(
                INSERT, {"id": n, "raw": body, "size": len(body), "state": "quarantined", "error": SIGNATURE_MISMATCH}
            )
    database.engine.dispose()
    expected = sorted((len(body), hashlib.sha256(body).hexdigest()) for body in bodies)
    del bodies, body

    tracemalloc.start()
    try:
        command.upgrade(config, "0010")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 6 * MB, f"the upgrade held {peak / MB:.1f} MB for 16 bodies of 1 MB"
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar() == 0
        digests = conn.execute(text("SELECT size, sha256 FROM rejected_deliveries")).all()
    assert sorted(tuple(row) for row in digests) == expected
