"""forged deliveries kept as digests, bad signatures counted

Relayed deliveries whose signature did not match used to be kept whole (up to 4 MB each) and
forever. They become rows of rejected_deliveries (sha256, size, time, source); the bodies go, for
good: downgrading drops the digests and cannot bring the bodies back.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:30:00.000000
"""

import hashlib

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}
SIGNATURE_MISMATCH = "relay: the signature does not match the app secret"
BATCH = 200


def upgrade() -> None:
    op.create_table(
        "rejected_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("install", sa.String(length=32), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_deliveries")),
        **OPTIONS,
    )
    with op.batch_alter_table("rejected_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejected_deliveries_received_at"), ["received_at"], unique=False)
        batch_op.create_index("ix_rejected_deliveries_install_seq", ["install", "seq"], unique=False)
    _digest_forged_deliveries()


def _digest_forged_deliveries() -> None:
    """Each quarantined forgery becomes a digest row; its receipt stays, pointing at nothing.

    Bodies are up to 4 MB each: the batch selects only ids and facts, and each body is then read and
    hashed alone, so the migration holds one body in memory at a time."""
    conn = op.get_bind()
    meta = sa.MetaData()
    deliveries = sa.Table("webhook_deliveries", meta, autoload_with=conn)
    receipts = sa.Table("relay_receipts", meta, autoload_with=conn)
    rejected = sa.Table("rejected_deliveries", meta, autoload_with=conn)
    forged = (deliveries.c.state == "quarantined") & (deliveries.c.error == SIGNATURE_MISMATCH)
    body = sa.select(deliveries.c.raw).where(deliveries.c.id == sa.bindparam("delivery_id"))
    while True:
        rows = conn.execute(
            sa.select(
                deliveries.c.id,
                deliveries.c.received_at,
                deliveries.c.source,
                receipts.c.install,
                receipts.c.seq,
            )
            .select_from(deliveries.outerjoin(receipts, receipts.c.delivery_id == deliveries.c.id))
            .where(forged)
            .order_by(deliveries.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        digests = []
        for row in rows:
            size, sha256 = _digest(conn.execute(body, {"delivery_id": row.id}).scalar())
            digests.append(
                {
                    "received_at": row.received_at,
                    "source": row.source or "relay",
                    "reason": "bad_signature",
                    "size": size,
                    "sha256": sha256,
                    "install": row.install,
                    "seq": row.seq,
                }
            )
        conn.execute(rejected.insert(), digests)
        ids = sorted({row.id for row in rows})
        conn.execute(sa.update(receipts).where(receipts.c.delivery_id.in_(ids)).values(delivery_id=None))
        conn.execute(sa.delete(deliveries).where(deliveries.c.id.in_(ids)))


def _digest(raw: bytes | None) -> tuple[int, str]:
    raw = raw or b""
    return len(raw), hashlib.sha256(raw).hexdigest()


def downgrade() -> None:
    """Drops the digests. The forged bodies cannot come back: upgrade deleted them and kept only their
    sha256 and size, so after a downgrade those deliveries are simply gone (their receipts stay)."""
    with op.batch_alter_table("rejected_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_rejected_deliveries_install_seq")
        batch_op.drop_index(batch_op.f("ix_rejected_deliveries_received_at"))
    op.drop_table("rejected_deliveries")
