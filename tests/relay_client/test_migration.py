"""Migration 0010: relayed forgeries stored whole by earlier versions become digests; their bodies go."""

from __future__ import annotations

import hashlib

from alembic import command
from sqlalchemy import text

from sigdesk.config import resource_root
from sigdesk.db import Database, alembic_config
from sigdesk.relay_client.receive import SIGNATURE_MISMATCH


def test_upgrade_turns_stored_forgeries_into_digests_and_keeps_genuine_deliveries(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'sigdesk.db'}")
    config = alembic_config(database, resource_root() / "migrations")
    try:
        command.upgrade(config, "0009")
        forged = b'{"forged": true}' * 1000
        with database.engine.begin() as conn:
            insert = text(
                "INSERT INTO webhook_deliveries (id, received_at, source, raw, size, state, error, attempts, "
                "event_count) VALUES (:id, '2026-12-01 10:00:00', 'relay', :raw, :size, :state, :error, 0, 0)"
            )
            conn.execute(insert, {"id": 1, "raw": b"{}", "size": 2, "state": "processed", "error": None})
            conn.execute(
                insert,
                {"id": 2, "raw": forged, "size": len(forged), "state": "quarantined", "error": SIGNATURE_MISMATCH},
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
            digest = conn.execute(
                text("SELECT source, reason, size, sha256, install, seq FROM rejected_deliveries")
            ).one()
        assert tuple(digest) == ("relay", "bad_signature", len(forged), hashlib.sha256(forged).hexdigest(), "i", 2)
        command.downgrade(config, "0009")
    finally:
        database.dispose()
