"""The dashboard's rollups: daily counters and one row per conversation episode.

Counting a 90-day window of a million messages, or walking threads for first replies, is too slow for a
page; these tables are kept up to date by an outbox consumer (sigdesk.analytics.rollups) and can be rebuilt
from history at any time (`sigdesk analytics rebuild`, or the worker on first start). Days are the business's
days (sigdesk.general.clock.business_zone) when the row was written.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sigdesk.db import Base, MYSQL_TABLE_OPTIONS, UTCDateTime
from sigdesk.models.sales import Order


class AnalyticsDaily(Base):
    """One counter for one day: `metric` (messages_in, messages_out, inbound_hour) and `dimension`
    ("" for the whole team, "a<user id>" for one agent, "h<hour>" or "h<hour>a<user id>" for the heatmap)."""

    __tablename__ = "analytics_daily"
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class AnalyticsEpisode(Base):
    """A stretch of a conversation from the customer's first message after it was resolved (or ever) to its
    resolution: when the team first answered (a message written by a person) and who handled it."""

    __tablename__ = "analytics_episodes"
    __table_args__ = (
        Index("ix_analytics_episodes_conversation_id_resolved_at", "conversation_id", "resolved_at"),
        # covering indexes: a period's counts, times and backlog are read from these alone
        Index("ix_analytics_episodes_started", "started_on", "agent_id", "first_response_seconds"),
        Index("ix_analytics_episodes_resolved", "resolved_on", "agent_id", "resolution_seconds"),
        Index("ix_analytics_episodes_agent_started", "agent_id", "started_on", "first_response_seconds"),
        Index("ix_analytics_episodes_agent_resolved", "agent_id", "resolved_on", "resolution_seconds"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_on: Mapped[date] = mapped_column(Date)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    first_response_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_on: Mapped[date | None] = mapped_column(Date, default=None)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer, default=None)


class AnalyticsState(Base):
    """Bookkeeping of the rollups: the last outbox event applied (so a replayed event is not counted twice)."""

    __tablename__ = "analytics_state"
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


# The dashboard's sales figures read only this index (an index-only range scan by day): no order row is
# visited for a period's revenue, orders per day, top customers or new-vs-returning customers.
Index(
    "ix_orders_analytics",
    Order.ordered_on,
    Order.status,
    Order.currency,
    Order.total_minor,
    Order.contact_id,
    Order.created_by,
)
