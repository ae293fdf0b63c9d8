"""relay installs and events

Revision ID: relay0001
Revises:
Create Date: 2026-11-23 07:49:52.257375
"""

from alembic import op
import sqlalchemy as sa
import sigdesk.db
from sqlalchemy.dialects import mysql

MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}

revision = "relay0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_installs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("hook_path", sa.String(length=64), nullable=False),
        sa.Column("verify_hash", sa.String(length=64), nullable=False),
        sa.Column("pairing_hash", sa.String(length=64), nullable=True),
        sa.Column("pairing_expires_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("acked_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("stored_events", sa.Integer(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("max_events", sa.Integer(), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("paired_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("last_delivery_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("last_poll_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_installs")),
        sa.UniqueConstraint("hook_path", name=op.f("uq_relay_installs_hook_path")),
        sa.UniqueConstraint("name", name=op.f("uq_relay_installs_name")),
        sa.UniqueConstraint("pairing_hash", name=op.f("uq_relay_installs_pairing_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_relay_installs_token_hash")),
        sa.UniqueConstraint("uid", name=op.f("uq_relay_installs_uid")),
        **MYSQL_TABLE,
    )
    op.create_table(
        "relay_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("install_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=True),
        sa.Column(
            "body",
            sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mariadb").with_variant(mysql.LONGBLOB(), "mysql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["install_id"],
            ["relay_installs.id"],
            name=op.f("fk_relay_events_install_id_relay_installs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_relay_events")),
        sqlite_autoincrement=True,
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("relay_events", schema=None) as batch_op:
        batch_op.create_index("ix_relay_events_install_id_seq", ["install_id", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("relay_events", schema=None) as batch_op:
        batch_op.drop_index("ix_relay_events_install_id_seq")

    op.drop_table("relay_events")
    op.drop_table("relay_installs")
