"""Reorder predictions as stored: one refresh run per computation, and the forecasts of the latest run.

Forecasts are written under their run's id and only then become current (the run turns "done"), so a page or
the API never reads half a refresh; the rows of older runs are deleted after. Probabilities and expected
orders are rows per horizon (the horizons are a setting), so the "Due to reorder" list filters and sorts by
probability in SQL; per-product dates are rows too, so the list filters by product.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Double, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime, utcnow

# A run's states: asked for (debounced events, nightly, the CLI), being computed, current or superseded, failed.
REFRESH_STATES = ("queued", "running", "done", "failed")


class PredictionRefresh(Base):
    """One refresh of every contact's forecast, with its progress for the page and the CLI."""

    __tablename__ = "prediction_refreshes"
    __table_args__ = (Index("ix_prediction_refreshes_state_id", "state", "id"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # Why it runs: "orders" (order events), "nightly", "cli", "page".
    reason: Mapped[str] = mapped_column(String(16))
    # The day predicted from (orders dated before it count); set when the run starts.
    as_of: Mapped[date | None] = mapped_column(Date, default=None)
    horizons: Mapped[str] = mapped_column(String(100), default="")
    processed: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    # When the last event asking for it came: the worker waits a quiet moment after it (debounce).
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # How the forecasts of the last 30 and 90 days came true (JSON; see sigdesk.predictions.services.accuracy),
    # computed once per business day and carried over by the day's later runs.
    accuracy: Mapped[str | None] = mapped_column(Text, default=None)


class ReorderForecast(Base):
    """A contact's forecast of one run. `next_order_on` is None with a `reason` when there is too little
    history (a single order); `at_risk` marks an expected order overdue by the configured margin."""

    __tablename__ = "reorder_forecasts"
    __table_args__ = (
        Index("ix_reorder_forecasts_run_id_next_order_on", "run_id", "next_order_on"),
        MYSQL_TABLE_OPTIONS,
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("prediction_refreshes.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    last_order_on: Mapped[date] = mapped_column(Date)
    next_order_on: Mapped[date | None] = mapped_column(Date, default=None)
    at_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(255), default=None)


class ReorderChance(Base):
    """The probability of at least one order, and the expected number of orders, within one horizon."""

    __tablename__ = "reorder_chances"
    __table_args__ = (
        Index("ix_reorder_chances_run_id_horizon_probability", "run_id", "horizon_days", "probability"),
        MYSQL_TABLE_OPTIONS,
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("prediction_refreshes.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    horizon_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    probability: Mapped[float] = mapped_column(Double)
    expected_orders: Mapped[float] = mapped_column(Double)


class ReorderProduct(Base):
    """The expected next reorder day of a product the contact buys regularly."""

    __tablename__ = "reorder_products"
    __table_args__ = (Index("ix_reorder_products_run_id_sku_next_on", "run_id", "sku", "next_on"), MYSQL_TABLE_OPTIONS)

    run_id: Mapped[int] = mapped_column(ForeignKey("prediction_refreshes.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_on: Mapped[date] = mapped_column(Date)
