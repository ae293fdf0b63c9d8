"""segments (saved contact filters) and the indexes the contacts list filters and sorts by

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 23:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}
CONTACT_INDEXES = {
    "ix_contacts_last_inbound_at": ["last_inbound_at"],
    "ix_contacts_last_outbound_at": ["last_outbound_at"],
    "ix_contacts_updated_at": ["updated_at"],
}


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_segments_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name_key", name="uq_segments_name_key"),
        **OPTIONS,
    )
    for name, columns in CONTACT_INDEXES.items():
        op.create_index(name, "contacts", columns, unique=False)


def downgrade() -> None:
    for name in CONTACT_INDEXES:
        op.drop_index(name, table_name="contacts")
    op.drop_table("segments")
