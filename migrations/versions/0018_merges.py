"""merged contacts (what each merge did) and pairs dismissed as not duplicates

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 23:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "contact_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kept_id", sa.Integer(), nullable=False),
        sa.Column("into_id", sa.Integer(), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("picks", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["kept_id"], ["contacts.id"], name=op.f("fk_contact_merges_kept_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_contact_merges_actor_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
        **OPTIONS,
    )
    with op.batch_alter_table("contact_merges", schema=None) as batch_op:
        batch_op.create_index("ix_contact_merges_kept_id_created_at", ["kept_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_contact_merges_actor_id"), ["actor_id"], unique=False)

    op.create_table(
        "contact_duplicate_dismissals",
        sa.Column("low_id", sa.Integer(), nullable=False),
        sa.Column("high_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["low_id"],
            ["contacts.id"],
            name=op.f("fk_contact_duplicate_dismissals_low_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["high_id"],
            ["contacts.id"],
            name=op.f("fk_contact_duplicate_dismissals_high_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_contact_duplicate_dismissals_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("low_id", "high_id", name=op.f("pk_contact_duplicate_dismissals")),
        **OPTIONS,
    )
    with op.batch_alter_table("contact_duplicate_dismissals", schema=None) as batch_op:
        batch_op.create_index("ix_contact_duplicate_dismissals_high_id", ["high_id"], unique=False)


def downgrade() -> None:
    # Each table takes its indexes with it (MariaDB refuses to drop one a foreign key still uses).
    for table in ("contact_duplicate_dismissals", "contact_merges"):
        op.drop_table(table)
