"""marketing consent as events with source and evidence

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:40:00.000000
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
