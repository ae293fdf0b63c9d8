"""tags on contacts and lifecycle stages with their history

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 21:40:00.000000
"""

import hashlib
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}

# The lifecycle a new SigDesk starts with (admins edit it in Settings → Stages); keys as sigdesk.lifecycle makes them.
DEFAULT_STAGES = ("New lead", "Qualified", "Customer", "Repeat customer", "Lost")


def _key(name: str) -> str:
    return hashlib.sha256(name.strip().casefold().encode("utf-8")).hexdigest()


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("color", sa.Integer(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name_key", name="uq_tags_name_key"),
        **OPTIONS,
    )
    op.create_table(
        "contact_tags",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_contact_tags_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_contact_tags_tag_id_tags"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_contact_tags_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("contact_id", "tag_id", name=op.f("pk_contact_tags")),
        **OPTIONS,
    )
    with op.batch_alter_table("contact_tags", schema=None) as batch_op:
        batch_op.create_index("ix_contact_tags_tag_id_contact_id", ["tag_id", "contact_id"], unique=False)

    stages = op.create_table(
        "stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stages")),
        sa.UniqueConstraint("name_key", name="uq_stages_name_key"),
        **OPTIONS,
    )
    op.create_table(
        "contact_stages",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("since", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_contact_stages_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["stage_id"], ["stages.id"], name=op.f("fk_contact_stages_stage_id_stages")),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contact_stages")),
        **OPTIONS,
    )
    with op.batch_alter_table("contact_stages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_stages_stage_id"), ["stage_id"], unique=False)

    op.create_table(
        "stage_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=True),
        sa.Column("stage_name", sa.String(length=64), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_stage_changes_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"], ["stages.id"], name=op.f("fk_stage_changes_stage_id_stages"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_stage_changes_actor_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_changes")),
        **OPTIONS,
    )
    with op.batch_alter_table("stage_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stage_changes_stage_id"), ["stage_id"], unique=False)
        batch_op.create_index("ix_stage_changes_contact_id_changed_at", ["contact_id", "changed_at"], unique=False)

    now = datetime.now(timezone.utc)
    op.bulk_insert(
        stages,
        [
            {"name": name, "name_key": _key(name), "position": position, "created_at": now}
            for position, name in enumerate(DEFAULT_STAGES, start=1)
        ],
    )


def downgrade() -> None:
    # Each table takes its indexes with it (MariaDB refuses to drop one a foreign key still uses).
    for table in ("stage_changes", "contact_stages", "stages", "contact_tags", "tags"):
        op.drop_table(table)
