"""imports (reserved slot: filled by the work on it)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 23:20:00.000000
"""

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
