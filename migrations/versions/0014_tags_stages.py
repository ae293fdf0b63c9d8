"""tags on contacts and lifecycle stages with their history

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 21:40:00.000000
"""

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
