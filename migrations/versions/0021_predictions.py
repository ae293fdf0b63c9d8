"""reorder predictions (and the index an agent's own sales read: who first moved an order on from "new")

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 02:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def _keys(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f(f"fk_{table}_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["prediction_refreshes.id"],
            name=op.f(f"fk_{table}_run_id_prediction_refreshes"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "prediction_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("horizons", sa.String(length=100), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("requested_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("started_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("accuracy", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_refreshes")),
        **MYSQL,
    )
    with op.batch_alter_table("prediction_refreshes", schema=None) as batch_op:
        batch_op.create_index("ix_prediction_refreshes_state_id", ["state", "id"], unique=False)

    op.create_table(
        "reorder_chances",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Double(), nullable=False),
        sa.Column("expected_orders", sa.Double(), nullable=False),
        *_keys("reorder_chances"),
        sa.PrimaryKeyConstraint("run_id", "contact_id", "horizon_days", name=op.f("pk_reorder_chances")),
        **MYSQL,
    )
    with op.batch_alter_table("reorder_chances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reorder_chances_run_id_horizon_probability", ["run_id", "horizon_days", "probability"], unique=False
        )

    op.create_table(
        "reorder_forecasts",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("last_order_on", sa.Date(), nullable=False),
        sa.Column("next_order_on", sa.Date(), nullable=True),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        *_keys("reorder_forecasts"),
        sa.PrimaryKeyConstraint("run_id", "contact_id", name=op.f("pk_reorder_forecasts")),
        **MYSQL,
    )
    with op.batch_alter_table("reorder_forecasts", schema=None) as batch_op:
        batch_op.create_index("ix_reorder_forecasts_run_id_next_order_on", ["run_id", "next_order_on"], unique=False)

    op.create_table(
        "reorder_products",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("next_on", sa.Date(), nullable=False),
        *_keys("reorder_products"),
        sa.PrimaryKeyConstraint("run_id", "contact_id", "sku", name=op.f("pk_reorder_products")),
        **MYSQL,
    )
    with op.batch_alter_table("reorder_products", schema=None) as batch_op:
        batch_op.create_index("ix_reorder_products_run_id_sku_next_on", ["run_id", "sku", "next_on"], unique=False)

    with op.batch_alter_table("order_status_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_status_changes_first_step", ["order_id", "from_status", "id", "changed_by"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("order_status_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_order_status_changes_first_step")
    # dropping a table drops its indexes (MySQL refuses to drop the last index a foreign key uses)
    for table in ("reorder_products", "reorder_forecasts", "reorder_chances", "prediction_refreshes"):
        op.drop_table(table)
