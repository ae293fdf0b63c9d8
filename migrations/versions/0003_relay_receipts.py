"""relay receipts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 07:52:20.922389
"""

from alembic import op
import sqlalchemy as sa
import sigdesk.db

MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_receipts",
        sa.Column("install", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_relay_receipts_delivery_id_webhook_deliveries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("install", "seq", name=op.f("pk_relay_receipts")),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("relay_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_relay_receipts_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("relay_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_relay_receipts_delivery_id"))

    op.drop_table("relay_receipts")
