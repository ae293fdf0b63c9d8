"""sessions, sign-in throttling and API token revocation

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("remember", sa.Boolean(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("nonce_hash", name=op.f("uq_user_sessions_nonce_hash")),
        **OPTIONS,
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "sign_in_throttles",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("locked_until", sigdesk.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_sign_in_throttles")),
        **OPTIONS,
    )
    _allow_loopback_as_before()


def keep_loopback(networks: str) -> str:
    """An allow-list written while loopback was always allowed, with loopback now written into it."""
    import ipaddress

    parts = [part.strip() for part in networks.split(",") if part.strip()]
    present = [ipaddress.ip_network(part, strict=False) for part in parts]
    missing = [
        loopback
        for loopback in ("127.0.0.0/8", "::1/128")
        if not any(ipaddress.ip_address(loopback.split("/")[0]) in network for network in present)
    ]
    return ",".join(missing + parts)


def _allow_loopback_as_before() -> None:
    """Loopback was always allowed; now the allow-list decides. A list someone wrote before keeps
    allowing it (the owner may take it out afterwards): the list itself gets it."""
    settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.Text))
    connection = op.get_bind()
    stored = connection.execute(
        sa.select(settings.c.value).where(settings.c.key == "server.allowed_networks")
    ).scalar_one_or_none()
    if stored is not None and keep_loopback(stored) != stored:
        connection.execute(
            settings.update().where(settings.c.key == "server.allowed_networks").values(value=keep_loopback(stored))
        )


def downgrade() -> None:
    op.drop_table("sign_in_throttles")
    op.drop_table("user_sessions")  # its index goes with it (MariaDB refuses to drop the one the foreign key uses)
