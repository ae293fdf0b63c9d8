"""contact imports: the jobs, what each changed (for undo), and the rows they refused

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 23:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("stored_path", sa.String(length=255), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("encoding", sa.String(length=32), nullable=True),
        sa.Column("delimiter", sa.String(length=4), nullable=True),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("consent_confirmed", sa.Boolean(), nullable=False),
        sa.Column("consent_source", sa.String(length=500), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("started_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("undone_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("undo_total", sa.Integer(), nullable=True),
        sa.Column("undo_processed", sa.Integer(), nullable=False),
        sa.Column("undo_cursor", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("restored", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_import_jobs_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
        **OPTIONS,
    )
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_import_jobs_state_id", ["state", "id"], unique=False)

    op.create_table(
        "import_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.Column("added", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_jobs.id"], name=op.f("fk_import_changes_job_id_import_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_changes")),
        **OPTIONS,
    )
    with op.batch_alter_table("import_changes", schema=None) as batch_op:
        batch_op.create_index("ix_import_changes_job_id_contact_id", ["job_id", "contact_id"], unique=False)

    op.create_table(
        "import_rejections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("cells", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_jobs.id"], name=op.f("fk_import_rejections_job_id_import_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_rejections")),
        **OPTIONS,
    )
    with op.batch_alter_table("import_rejections", schema=None) as batch_op:
        batch_op.create_index("ix_import_rejections_job_id_line", ["job_id", "line"], unique=False)


def downgrade() -> None:
    op.drop_table("import_rejections")
    op.drop_table("import_changes")
    op.drop_table("import_jobs")
